"""The README stays true: its configuration table is the one the settings generate."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_readme_configuration_table_matches_the_settings():
    config_table = _load("config_table")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert config_table.current_section(readme) == config_table.render(), (
        "README.md's configuration table is stale: run `python tools/config_table.py --write`"
    )


def test_every_setting_has_a_meaning():
    config_table = _load("config_table")
    from xephang.config import DEFAULTS

    assert set(DEFAULTS) <= set(config_table.MEANINGS), "describe new settings in MEANINGS"


def test_readme_links_only_files_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"(?:src=\"|\]\()((?:docs|data)/[^\")#]+)", readme))
    assert linked, "the README shows a screenshot and links data/SOURCES.md"
    missing = sorted(path for path in linked if not (ROOT / path).is_file())
    assert not missing, f"README.md links missing files: {missing}"
