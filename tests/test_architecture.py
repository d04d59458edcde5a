"""The house rule in the test suite: features import only core; core imports no feature."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_checker():
    # tools/ is a folder of scripts, not a package: load the script by path.
    spec = importlib.util.spec_from_file_location("check_imports", ROOT / "tools/check_imports.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


def test_the_project_keeps_the_import_rule():
    violations = checker.find_violations(ROOT)
    assert not violations, "\n".join(map(str, violations))


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("rel", "source", "reason"),
    [
        ("booking/views.py", "from kiosk import tickets\n", "imports feature 'kiosk'"),
        ("kiosk/views.py", "import xephang.config\n", "imports 'xephang'"),
        ("counter/jobs.py", "def f():\n    from display import board\n", "feature 'display'"),
        ("core/slots.py", "from booking.api import blp\n", "core imports 'booking'"),
        ("core/db.py", "from xephang import create_app\n", "core imports 'xephang'"),
        ("core/queue.py", "", "would shadow"),
    ],
)
def test_the_checker_catches_each_kind_of_breach(tmp_path, rel, source, reason):
    _write(tmp_path, rel, source)
    violations = checker.find_violations(tmp_path)
    assert len(violations) == 1
    assert reason in str(violations[0])


def test_the_checker_allows_core_and_own_package_imports(tmp_path):
    _write(tmp_path, "booking/__init__.py", "")
    _write(tmp_path, "booking/api.py", "from core import booking\nfrom . import pages\n")
    _write(tmp_path, "booking/pages.py", "from booking.api import blp\nimport flask\n")
    _write(tmp_path, "xephang/web.py", "import booking\nimport kiosk\n")
    _write(tmp_path, "core/x.py", "from core.models import Slot\n")
    assert checker.find_violations(tmp_path) == []
