"""The SQLite ledger binds its own call rows (:func:`paid_hooks.ledger.sqlite._sqlite_call_row`:
NaN for ``None``). Whatever the record, the stored row must be the one ``call_row`` always
stored (same values, same storage types), duplicates included; and the pipeline, which
keeps the rows it built as it priced each call, must store what :meth:`SQLLedger.write`
stores.
"""

from __future__ import annotations

import random
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from ledger_reference import random_call, random_signal

import paid_hooks
from paid_hooks import AICall, CallStatus, CostStatus, Price, PricedCall, SignalRecord, Usage
from paid_hooks.ledger import SQLiteLedger
from paid_hooks.ledger._common import CALL_COLUMNS, SIGNAL_COLUMNS, call_row, signal_row
from paid_hooks.ledger.sqlite import (
    _NULL,
    _SUMMARIZE,
    SQLITE,
    _multi_row_sql,
    _sqlite_call_row,
)

_TYPED = ", ".join(f"{c}, typeof({c})" for c in CALL_COLUMNS)
_TYPED_SIGNALS = ", ".join(f"{c}, typeof({c})" for c in SIGNAL_COLUMNS)


def _stored(path: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Every call row, signal row and summary row, with each value's storage type."""
    conn = sqlite3.connect(path)
    try:
        return (conn.execute(f"SELECT {_TYPED} FROM ai_calls ORDER BY id").fetchall(),
                conn.execute(f"SELECT {_TYPED_SIGNALS} FROM signals ORDER BY id").fetchall(),
                conn.execute("SELECT * FROM trace_costs ORDER BY trace_id, bucket").fetchall())
    finally:
        conn.close()


def _reference(path: Path, batches: list[tuple[list[PricedCall], list[SignalRecord]]]) -> None:
    """What the ledger stored before it bound rows of its own: ``call_row``'s values,
    bound one row at a time (``executemany``), then counted into the summaries."""
    SQLiteLedger(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for calls, signals in batches:
            conn.execute("BEGIN IMMEDIATE")
            if calls:
                conn.executemany(SQLITE.insert_call(), [call_row(c) for c in calls])
                for statement in _SUMMARIZE:
                    conn.execute(statement)
            if signals:
                conn.executemany(SQLITE.insert_signal(), [signal_row(s) for s in signals])
            conn.execute("COMMIT")
    finally:
        conn.close()


def _awkward_calls() -> list[PricedCall]:
    """Values that a text, NULL or float encoding could get wrong."""
    odd = ["it's \"quoted\"", "naïve ✓ 日本", "emoji 🚀", "back\\slash", "tab\tnew\nline",
           "nul\x00inside", "", " ", "0", "1e3", "NULL"]
    out = []
    for n, text in enumerate(odd):
        usage = [None, Usage(input_tokens=2**62, output_tokens=0),
                 Usage(input_tokens=5, output_tokens=7, cache_read_tokens=0,
                       cache_write_tokens=3, reasoning_tokens=1, estimated=True),
                 Usage(input_tokens=1, output_tokens=1, units={"images": Decimal("2.5")})][n % 4]
        price = None if n % 3 == 0 else Price(
            [Decimal("0.000000000001"), Decimal("1E+1"), Decimal("7.5E-8"),
             Decimal("12345.123456789012"), Decimal("-0.5")][n % 5],
            price_source=[text, "genai-prices 1.0"][n % 2])
        start = [0, 1, 1_764_000_000_123_456_789, 2**53 + 1, 999_999_999][n % 5]
        call = AICall(
            text or "openai", text or "chat", [text, None, "gpt-4o"][n % 3],
            [text, None, "", "gpt-4o-2024"][n % 4], usage, text or "bench", start,
            start + [0, 1, 123_456_789, 10**15][n % 4],
            status=CallStatus.ERROR if n % 5 == 0 else CallStatus.OK,
            error_type=text if n % 5 == 0 else None,
            response_id=[text, None, ""][n % 3], streaming=bool(n % 2),
            service_tier=[None, text][n % 2])
        status = CostStatus.PRICED if price else CostStatus.UNPRICED
        out.append(PricedCall(call, (2**128 - 1) if n % 2 else n, (2**64 - 1) if n % 3 else n + 1,
                              [None, text][n % 2], [text, None][n % 2], status, price,
                              None if price else text))
    return out


def test_awkward_values_are_stored_as_call_row_stores_them(tmp_path):
    calls = _awkward_calls()
    signals = [SignalRecord("e ✓", "c'1", "a\x00", 2**128 - 1, f"k{i}", bool(i % 2),
                            1_764_000_000_123_456_789 + i,
                            data_json=[None, "", '{"x": "é"}'][i % 3],
                            rejection_reason=[None, "why"][i % 2], span_id=i + 1)
               for i in range(6)]
    batches = [(calls, signals), (calls[::-1], [])]  # the second: duplicates of the first
    SQLiteLedger(tmp_path / "new.db").write(*batches[0])
    ledger = SQLiteLedger(tmp_path / "new.db")
    ledger.write(*batches[1])
    _reference(tmp_path / "old.db", batches)
    assert _stored(tmp_path / "new.db") == _stored(tmp_path / "old.db")


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_are_stored_as_call_row_stores_them(tmp_path, seed):
    rng = random.Random(seed)
    batches = []
    for _ in range(12):
        calls = [random_call(rng, 6, rng.randrange(40)) for _ in range(rng.choice([1, 3, 300]))]
        signals = [random_signal(rng, 6, rng.randrange(30)) for _ in range(rng.randrange(3))]
        batches.append((calls, signals))
    ledger = SQLiteLedger(tmp_path / "new.db")
    for calls, signals in batches:
        ledger.write(calls, signals)
    _reference(tmp_path / "old.db", batches)
    assert _stored(tmp_path / "new.db") == _stored(tmp_path / "old.db")


def _same(value: object, null: object) -> object:
    return "<NULL>" if value is null else (type(value), value)


@pytest.mark.parametrize("seed", range(3))
def test_rows_are_call_rows_with_nan_for_none(seed):
    """None goes through the sqlite3 module's adapter lookup: bound as NaN instead (SQLite
    stores a NaN as NULL); every other value is call_row's own, of the same type."""
    rng = random.Random(seed)
    for rec in _awkward_calls() + [random_call(rng, 6, n) for n in range(300)]:
        row = _sqlite_call_row(rec)
        assert None not in row
        assert [_same(v, _NULL) for v in row] == [_same(v, None) for v in call_row(rec)]


@pytest.mark.parametrize("seed", range(2))
def test_rows_from_a_records_parts_are_its_rows(seed):
    """The ledger-only path builds a call's row from the parts of its record, without the
    record (``parts`` of a row builder): the same row, value for value, type for type."""
    rng = random.Random(seed)
    for rec in _awkward_calls() + [random_call(rng, 6, n) for n in range(300)]:
        parts = (rec.call, rec.trace_id, rec.span_id, rec.external_customer_id,
                 rec.external_agent_id, rec.cost_status, rec.price, rec.cost_reason)
        for builder in (call_row, _sqlite_call_row):
            expected = builder(rec)
            row = builder.parts(*parts)
            assert [(type(v), v) for v in row if v == v] == [
                (type(v), v) for v in expected if v == v]  # (NaN != NaN)
            assert [v != v for v in row] == [v != v for v in expected]


def test_multi_row_statements_bind_plain_values_only():
    """A row of expressions would make SQLite compile the statement in quadratic time."""
    sql = _multi_row_sql(SQLITE.insert_call(), 3)
    assert sql.count("(?,?,?,") == 3 and "/" not in sql


def test_the_pipeline_writes_the_rows_write_would(tmp_path):
    """Calls and signals through the recorder (the ledger-only path, rows built as each call
    is priced) end as the same rows as the same records given to write()."""
    url = f"sqlite:///{tmp_path / 'pipeline.db'}"
    paid_hooks.initialize_tracing(ledger=url)
    try:
        for t in range(30):
            with paid_hooks.paid_tracing(f"cust-{t % 4}", external_agent_id="agent ✓"):
                for j in range(7):
                    handle = paid_hooks.start_call(provider="openai", operation="chat",
                                                   request_model="gpt-4o-mini",
                                                   captured_by="test")
                    handle.finish(Usage(input_tokens=100 + t, output_tokens=j,
                                        cache_read_tokens=(j % 2) or None),
                                  response_model="gpt-4o-mini-2024-07-18",
                                  response_id=f"resp-{t}-{j}" if j % 3 else None)
                paid_hooks.signal("done", enable_cost_tracing=True)
        assert paid_hooks.flush(30)
    finally:
        paid_hooks.shutdown()
    stored = SQLiteLedger(tmp_path / "pipeline.db")
    rows = stored.calls()
    assert len(rows) == 210 and len(stored.signals()) == 30
    assert all(r["cost_status"] == "priced" and Decimal(r["cost_usd"]) > 0 for r in rows)
    for row in rows:
        span = row["span_id"]
        assert row["dedupe_key"] == (f"resp:{row['response_id']}" if row["response_id"]
                                     else f"span:{span}")
        assert row["model"] == "gpt-4o-mini-2024-07-18"
        assert isinstance(row["started_at"], float) and isinstance(row["duration_ms"], float)
    assert sum(r["ai_calls"] for r in stored.signals()) == 210
