"""The CLI writes its JSON and tables itself, fast: the text must be exactly what
``json.dumps(rows, indent=2)`` and rich's tables would have printed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_records import priced, sig
from rich.console import Console

from paid_hooks import CostStatus, PricedCall, SignalRecord
from paid_hooks.cli import _FastTable, _show, _TableSpec, json_text
from paid_hooks.ledger import open_ledger

CLI = [str(Path(sys.executable).parent / "paid-hooks")]

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), _text,
                    st.floats(allow_nan=True, allow_infinity=True))
_json = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)), max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(_text, min_size=1, max_size=5, unique=True), data=st.data())
def test_json_text_is_json_dumps_with_indent_2(keys, data):
    rows = data.draw(st.lists(st.fixed_dictionaries(
        {key: (_json if n == 0 else _scalar) for n, key in enumerate(keys)}), max_size=6))
    assert json_text(rows) == json.dumps(rows, indent=2)


def test_json_text_of_rows_with_different_keys_falls_back_to_json_dumps():
    rows = [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": 1}]
    assert json_text(rows) == json.dumps(rows, indent=2)
    assert json_text([]) == "[]"


_cell = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


def _rich(spec: _TableSpec, **console: object) -> str:
    out = io.StringIO()
    Console(file=out, width=120, **console).print(spec.rich_table())  # type: ignore[arg-type]
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(columns=st.lists(st.tuples(_cell, st.sampled_from(["left", "right"]), st.booleans()),
                        min_size=1, max_size=7), data=st.data())
def test_tables_are_drawn_as_rich_draws_them(columns, data):
    width = len(columns)
    spec = _TableSpec(data.draw(_cell), columns)
    spec.rows = data.draw(st.lists(st.tuples(st.lists(_cell, min_size=width, max_size=width),
                                             st.sampled_from([None, "dim"])), max_size=8))
    spec.footer = data.draw(st.one_of(st.none(), st.lists(_cell, min_size=width,
                                                          max_size=width)))
    out = io.StringIO()
    real, sys.stdout = sys.stdout, out
    try:
        _show(spec)
    finally:
        sys.stdout = real
    assert out.getvalue() == _rich(spec)  # piped: as text (or through rich, if too wide)
    widths = spec.fits(120)
    if widths is not None:
        terminal = io.StringIO()
        Console(file=terminal, width=120, force_terminal=True,
                color_system="truecolor").print(_FastTable(spec, widths))
        assert terminal.getvalue() == _rich(spec, force_terminal=True, color_system="truecolor")


def test_cells_are_shown_as_they_are_not_as_markup(capsys):
    spec = _TableSpec("t", [("customer", "left", True)], [(["[bold]acme[/]"], None)])
    _show(spec)
    assert "[bold]acme[/]" in capsys.readouterr().out


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60,
                          env={**env, "COLUMNS": "160"})


@pytest.fixture
def many_signals(tmp_path):
    """A ledger of 150 signals, each the cost signal of its trace with one call."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(url)
    calls: list[PricedCall] = [priced(n, "0.01", trace=n, customer=f"cust-ü{n % 3}")
                               for n in range(1, 151)]
    signals: list[SignalRecord] = [sig("booked", f"k{n}", n * 1_000_000_000, trace=n,
                                       customer=f"cust-ü{n % 3}") for n in range(1, 151)]
    ledger.write(calls, signals)
    ledger.write([priced(999, None, trace=5, status=CostStatus.UNPRICED)], [])
    yield url, ledger
    ledger.close()


def test_signals_table_shows_the_most_recent_rows_and_the_total_of_all(many_signals):
    url, _ = many_signals
    table = run_cli("signals", "--ledger", url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert sum("booked" in line for line in lines) == 100
    assert "1970-01-01 00:02:30" in table.stdout and "1970-01-01 00:00:50" not in table.stdout
    assert "151" in next(line for line in lines if "total" in line)  # every call counted
    assert "The 100 most recent of 150 signals" in table.stdout
    everything = run_cli("signals", "--limit", "0", "--ledger", url)
    assert sum("booked" in line for line in everything.stdout.splitlines()) == 150
    assert "most recent" not in everything.stdout


def test_signals_json_is_every_signal_unless_limited(many_signals):
    url, ledger = many_signals
    result = run_cli("signals", "--json", "--ledger", url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == json.dumps(ledger.signals(), indent=2) + "\n"
    limited = run_cli("signals", "--json", "--limit", "7", "--customer", "cust-ü1",
                      "--ledger", url)
    assert limited.stdout == json.dumps(ledger.signals(customer="cust-ü1")[-7:], indent=2) + "\n"
    none = run_cli("signals", "--json", "--customer", "nobody", "--ledger", url)
    assert none.stdout == "[]\n"
