"""Every example runs as a standalone script, offline, and records costs in a ledger."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(
    p for p in (Path(__file__).parent.parent / "examples").glob("*.py")
    if not p.name.startswith("_") and p.name != "demo.py"
)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_offline(script: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.startswith("AWS_")}
    env["PAID_HOOKS_LEDGER"] = f"sqlite:///{ledger}"
    doc = script.read_text().split('"""')[1]
    assert "pip install" in doc, f"{script.name} docstring must name the extra it needs"
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "local fake provider" in result.stderr
    with sqlite3.connect(ledger) as conn:
        calls = conn.execute(
            "SELECT COUNT(*), SUM(cost_status = 'priced') FROM ai_calls").fetchone()
        signals = conn.execute("SELECT COUNT(*) FROM signals").fetchone()[0]
    assert calls[0] >= 1 and calls[1] >= 1, f"{script.name} recorded no priced AI call"
    assert signals >= 1, f"{script.name} recorded no signal"
