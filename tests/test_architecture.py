"""The house's dependency rules, kept by import-linter (`make lint` runs `lint-imports`).

The contracts live in pyproject.toml: xephang wires the features, features use `web` and
`core` but never each other, `web` uses `core`, core imports no web library, and core's
domains depend downwards only (common → models → catalogue → places/access/citizens →
booking/floor → operations/notifications → demo). The tests run the real tool on this tree,
and on scratch trees with one breach each, to show the contracts catch what they should.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
# Names a module of ours must never take: it would shadow the stdlib or a library.
RESERVED_NAMES = ("queue", "redis", "platform")
PACKAGES = ("core", "web", "booking", "kiosk", "counter", "display", "dashboard", "scheduler")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS, "import-linter is not installed (pip install -e '.[dev]')"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_project_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout and result.stdout.count("KEPT") >= 3


def test_no_module_shadows_a_library():
    found = [
        str(path.relative_to(ROOT))
        for package in (*PACKAGES, "xephang", "tests", "bench", "tools")
        for path in (ROOT / package).rglob("*")
        if path.stem in RESERVED_NAMES and (path.is_dir() or path.suffix == ".py")
    ]
    assert not found, found


SCRATCH_MODULES = {
    "xephang/__init__.py": "import booking\nimport kiosk\n",
    "booking/__init__.py": "from web import api\nfrom core.floor import tickets\n",
    "kiosk/__init__.py": "from core.booking import appointments\n",
    "counter/__init__.py": "",
    "display/__init__.py": "",
    "dashboard/__init__.py": "",
    "scheduler/__init__.py": "",
    "web/__init__.py": "",
    "web/api.py": "import flask\nfrom core.common import errors\n",
    "core/__init__.py": "",
    "core/common/__init__.py": "",
    "core/common/errors.py": "",
    "core/models/__init__.py": "from core.common import errors\n",
    "core/catalogue/__init__.py": "",
    "core/places/__init__.py": "",
    "core/access/__init__.py": "",
    "core/citizens/__init__.py": "",
    "core/booking/__init__.py": "",
    "core/booking/appointments.py": "from core.models import x\n",
    "core/floor/__init__.py": "",
    "core/floor/tickets.py": "from core.booking import appointments\n",
    "core/operations/__init__.py": "",
    "core/notifications/__init__.py": "",
    "core/demo.py": "from core.operations import x\n",
}


def scratch_tree(tmp_path: Path, **changes: str) -> Path:
    """A tiny tree of our packages under our own contracts, with `changes` (path → source,
    '/' written as '__')."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (tmp_path / ".importlinter").write_text(_ini(config))
    for rel, source in {
        **SCRATCH_MODULES,
        **{k.replace("__", "/"): v for k, v in changes.items()},
    }.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return tmp_path


def _ini(config: dict) -> str:
    """pyproject's [tool.importlinter] as the .importlinter file the tool also reads."""
    lines = ["[importlinter]", "root_packages =", *(f"    {p}" for p in config["root_packages"])]
    lines.append(f"include_external_packages = {config['include_external_packages']}")
    for n, contract in enumerate(config["contracts"]):
        lines.append(f"[importlinter:contract:{n}]")
        for key, value in contract.items():
            if isinstance(value, list):
                lines.append(f"{key} =")
                lines += [f"    {item}" for item in value]
            else:
                lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def test_a_clean_scratch_tree_keeps_the_contracts(tmp_path):
    result = lint_imports(scratch_tree(tmp_path))
    assert result.returncode == 0, result.stdout[-2000:]


@pytest.mark.parametrize(
    ("changes", "broken"),
    [
        # core imports a web library
        ({"core__common__errors.py": "import flask\n"}, "core imports no web library"),
        ({"core__floor__tickets.py": "from werkzeug import security\n"}, "no web library"),
        # a feature imports another feature
        ({"kiosk__pages.py": "from booking import views\n"}, "features use web and core"),
        # core imports the web layer or a feature
        ({"core__booking__slots.py": "from web import api\n"}, "features use web and core"),
        # a domain imports upwards
        ({"core__models__ticket.py": "from core.floor import tickets\n"}, "depend downwards"),
        ({"core__booking__slots.py": "from core.operations import x\n"}, "depend downwards"),
    ],
)
def test_a_breach_breaks_a_contract(tmp_path, changes, broken):
    result = lint_imports(scratch_tree(tmp_path, **changes))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and broken in result.stdout, result.stdout[-2000:]
