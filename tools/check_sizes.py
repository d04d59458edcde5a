"""Sizes the house keeps (STYLE.md): no module over 400 lines, no function over 60.

Checked for the application's packages (core, web, the features, xephang); tests, benches
and tools are left to judgement. A module's size counts every line; a function's, the lines
from its `def` (decorators excluded) to its last line. Run by `make lint`:
`python tools/check_sizes.py [ROOT]` prints `path:line: reason` and exits 1 on any breach.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
PACKAGES = ("core", "web", "booking", "kiosk", "counter", "display", "dashboard", "scheduler")
PACKAGES += ("xephang",)


def breaches(root: Path) -> list[str]:
    found: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            text = path.read_text(encoding="utf-8")
            lines = text.count("\n") + (not text.endswith("\n") and bool(text))
            if lines > MAX_MODULE_LINES:
                found.append(f"{rel}:1: module of {lines} lines (at most {MAX_MODULE_LINES})")
            for node in ast.walk(ast.parse(text, filename=str(rel))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(
                            f"{rel}:{node.lineno}: function {node.name} of {length} lines "
                            f"(at most {MAX_FUNCTION_LINES})"
                        )
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    found = breaches(root)
    for line in found:
        print(line)
    if found:
        print(f"sizes: {len(found)} breaches", file=sys.stderr)
        return 1
    print("sizes: ok (modules ≤ 400 lines, functions ≤ 60)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
