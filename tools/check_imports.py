"""The house's dependency rule, checked on the source tree (no imports executed).

- A feature package (booking, kiosk, counter, display, dashboard, scheduler) imports only
  `core` and itself: never `xephang` nor another feature. Features meet through core events.
- `core` imports no feature package and not `xephang`.
- No module or package is named like a stdlib or library module it would shadow
  (`queue`, `redis`, `platform`).

Only `xephang/` (the composition root), `wsgi.py`, tests, bench and tools may import features.

Run: `python tools/check_imports.py [ROOT]`; exits 1 and prints `path:line: reason` lines.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

FEATURES = ("booking", "kiosk", "counter", "display", "dashboard", "scheduler")
CORE = "core"
ROOT_PACKAGE = "xephang"
# Modules whose names we must never take: they would shadow stdlib/library imports.
RESERVED_NAMES = ("queue", "redis", "platform")
# Checked for reserved names too (features and core are checked for everything).
CHECKED_FOR_NAMES = (*FEATURES, CORE, ROOT_PACKAGE, "tests", "bench", "tools")
IGNORED_DIRS = {"__pycache__", "node_modules", "templates", "static", "translations"}


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _python_files(package_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in package_dir.rglob("*.py")
        if not IGNORED_DIRS.intersection(path.relative_to(package_dir).parts)
    )


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every absolute module name imported anywhere in the file (also inside functions)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module or ""))
                continue
            # A relative import: resolve it against the importing module's package.
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = package[: len(package) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
            found.append((node.lineno, target))
    return found


def _rule_broken(owner: str, imported_top: str) -> str | None:
    if owner in FEATURES:
        if imported_top == ROOT_PACKAGE:
            return f"feature '{owner}' imports '{ROOT_PACKAGE}' (features import only core)"
        if imported_top in FEATURES and imported_top != owner:
            return f"feature '{owner}' imports feature '{imported_top}' (meet through core)"
    if owner == CORE and (imported_top in FEATURES or imported_top == ROOT_PACKAGE):
        return f"core imports '{imported_top}' (core depends on no feature nor the app)"
    return None


def check_file(root: Path, path: Path) -> list[Violation]:
    rel = path.relative_to(root).as_posix()
    module = _module_name(root, path)
    owner = module.split(".")[0]
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    except SyntaxError as exc:
        return [Violation(rel, exc.lineno or 0, f"cannot parse: {exc.msg}")]
    violations = []
    for line, name in _imported_modules(tree, module, path.name == "__init__.py"):
        reason = _rule_broken(owner, name.split(".")[0])
        if reason:
            violations.append(Violation(rel, line, f"{reason}: import {name}"))
    return violations


def _reserved_names(root: Path, package_dir: Path) -> list[Violation]:
    found = []
    for path in [package_dir, *package_dir.rglob("*")]:
        if IGNORED_DIRS.intersection(path.relative_to(root).parts):
            continue
        name = path.stem if path.suffix == ".py" else path.name
        if (path.is_dir() or path.suffix == ".py") and name in RESERVED_NAMES:
            rel = path.relative_to(root).as_posix()
            found.append(Violation(rel, 0, f"'{name}' would shadow the module of that name"))
    return found


def find_violations(root: Path) -> list[Violation]:
    """All breaches of the dependency and naming rules under `root`, sorted."""
    violations: list[Violation] = []
    for name in (*FEATURES, CORE):
        package_dir = root / name
        if package_dir.is_dir():
            for path in _python_files(package_dir):
                violations.extend(check_file(root, path))
    for name in CHECKED_FOR_NAMES:
        if (root / name).is_dir():
            violations.extend(_reserved_names(root, root / name))
    for path in root.iterdir():  # top-level modules and packages shadow just as well
        name = path.stem if path.suffix == ".py" else path.name
        if name in RESERVED_NAMES and (path.is_dir() or path.suffix == ".py"):
            violations.append(Violation(path.name, 0, f"'{name}' would shadow that module"))
    return sorted(violations)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    violations = find_violations(root.resolve())
    for violation in violations:
        print(violation)
    if violations:
        print(f"import rule: {len(violations)} violation(s)", file=sys.stderr)
        return 1
    checked = [name for name in (*FEATURES, CORE) if (root / name).is_dir()]
    print(f"import rule: ok ({', '.join(checked)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
