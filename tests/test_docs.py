"""The README matches the code: integration tables, demo command, hooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_readme_integration_tables_match_the_plugin_readmes():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_readme.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, "README.md is stale: run scripts/sync_readme.py"


def test_readme_names_the_two_commands_and_ci_runs_the_same_tests():
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/demo" in readme and "./scripts/test" in readme
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_every_extra_has_its_plugin_and_entry_point():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entry_points = project["entry-points"]["paid_hooks"]
    for name, module in entry_points.items():
        assert module == f"paid_hooks_{name}"
        assert (ROOT / "plugins" / module / "__init__.py").exists()
        assert name.replace("_", "-") in project["optional-dependencies"], name
