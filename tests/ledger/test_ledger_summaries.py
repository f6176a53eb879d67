"""The reports read per-trace summaries that the ledger keeps up to date as rows are written
(schema version 2). Whatever arrives, in whatever order and batches, with duplicates of one
provider response replacing each other, every report must equal its recomputation from the
raw rows (``ledger_reference``), on SQLite and on PostgreSQL. Also: ledgers of schema
version 1 are migrated, rows changed by hand or by an older paid-hooks are accounted for,
and the row builder stores what it always stored.
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_records import priced, sig
from ledger_reference import (
    assert_reports_match,
    random_call,
    random_signal,
    write_randomly,
)

from paid_hooks import CostStatus, Usage
from paid_hooks.ledger import LedgerError, SQLiteLedger, open_ledger
from paid_hooks.ledger._common import (
    SCHEMA_VERSION,
    _money_text,
    _to_pico,
    call_row,
    pico_usd,
    signal_row,
)


def _exact(url: str) -> bool:
    """PostgreSQL adds the decimal amounts; SQLite the pico-dollar integers."""
    return not url.startswith("sqlite")


def run_sql(url: str, *statements: str) -> None:
    """Statements on the ledger's database, by another connection (a user, a script)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement)


@pytest.mark.parametrize("seed", range(8))
def test_reports_equal_a_recomputation_from_the_raw_rows(open_backend, ledger_url, seed):
    ledger = open_backend()
    write_randomly(ledger, random.Random(seed))
    assert_reports_match(ledger, _exact(ledger_url))
    assert_reports_match(open_backend(), _exact(ledger_url))  # a fresh reader too


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), calls=st.integers(0, 40),
       signals=st.integers(0, 15), traces=st.integers(1, 6))
def test_sqlite_reports_match_for_any_sequence_of_writes(rng, calls, signals, traces):
    with tempfile.TemporaryDirectory() as tmp:
        ledger = SQLiteLedger(Path(tmp) / "ledger.db")
        write_randomly(ledger, rng, calls=calls, signals=signals, traces=traces)
        assert_reports_match(ledger, exact=False)
        ledger.close()


def test_a_richer_duplicate_moves_its_call_between_buckets_and_groups(open_backend, ledger_url):
    """The update of a row replaces its old contribution: tokens, cost, status and all."""
    ledger = open_backend()
    ledger.write([priced(1, None, response_id="r", status=CostStatus.USAGE_UNKNOWN,
                         usage=Usage(input_tokens=5))],
                 [sig("booked", "k", 2_000)])
    assert ledger.signals()[0]["usage_unknown_calls"] == 1
    ledger.write([priced(2, "0.25", response_id="r",
                         usage=Usage(input_tokens=100, output_tokens=7, cache_read_tokens=3))],
                 [])
    [row] = ledger.signals()
    assert (row["ai_calls"], row["cost_usd"], row["input_tokens"],
            row["usage_unknown_calls"]) == (1, "0.25", 100, 0)
    assert [r["group"] for r in ledger.costs("customer")] == ["acme"]
    assert_reports_match(ledger, _exact(ledger_url))


def test_rows_deleted_or_changed_by_hand_are_accounted_for(open_backend, ledger_url):
    """paid-hooks never deletes; someone pruning or fixing the ledger by hand may."""
    ledger = open_backend()
    write_randomly(ledger, random.Random(7), calls=80, signals=30)
    run_sql(ledger_url,
            "DELETE FROM ai_calls WHERE id % 3 = 0",
            "UPDATE ai_calls SET cost_status = 'unpriced', cost_usd = NULL, cost_pusd = NULL "
            "WHERE id % 5 = 1",
            "UPDATE ai_calls SET input_tokens = 7 WHERE id % 4 = 2",
            "DELETE FROM signals WHERE id % 4 = 0",
            "UPDATE signals SET external_customer_id = 'moved', created_at = created_at - 100 "
            "WHERE id % 3 = 1")
    assert_reports_match(ledger, _exact(ledger_url))


def test_calls_written_by_an_older_paid_hooks_are_counted(tmp_path):
    """Version 1 inserted rows without counting them (it had no summaries): the next write
    or report counts them; its upserts of rows already counted are followed by a trigger."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(url)
    ledger.write([priced(1, "0.5", response_id="r1")], [sig("booked", "k", 2_000)])
    insert = ledger.dialect.insert_call()
    rows = [call_row(priced(2, "0.25")),
            call_row(priced(3, "0.75", response_id="r1",  # richer duplicate of call 1
                            usage=Usage(input_tokens=3, output_tokens=1, cache_read_tokens=1)))]
    conn = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    for row in rows:
        conn.execute(insert, row)
    conn.close()
    [row] = ledger.signals()
    assert (row["ai_calls"], row["cost_usd"]) == (2, "1")
    assert_reports_match(ledger, exact=False)
    ledger.write([priced(4, "1")], [])
    assert_reports_match(ledger, exact=False)


# -- migration from schema version 1 ------------------------------------------------------

_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE ai_calls (
    id {id}, trace_id TEXT NOT NULL, span_id TEXT NOT NULL, dedupe_key TEXT NOT NULL,
    richness INTEGER NOT NULL, external_customer_id TEXT, external_agent_id TEXT,
    provider TEXT NOT NULL, operation TEXT NOT NULL, request_model TEXT, response_model TEXT,
    model TEXT, captured_by TEXT NOT NULL, response_id TEXT, streaming INTEGER NOT NULL,
    call_status TEXT NOT NULL, error_type TEXT, input_tokens {count}, output_tokens {count},
    cache_read_tokens {count}, cache_write_tokens {count}, reasoning_tokens {count},
    usage_json TEXT, cost_status TEXT NOT NULL, cost_reason TEXT, cost_usd {money},
    cost_pusd {count}, cost_inexact INTEGER NOT NULL DEFAULT 0, price_source TEXT,
    service_tier TEXT, started_at {real} NOT NULL, duration_ms {real} NOT NULL,
    UNIQUE (trace_id, dedupe_key)
);
CREATE INDEX ai_calls_trace ON ai_calls (trace_id);
CREATE TABLE signals (
    id {id}, trace_id TEXT NOT NULL, span_id TEXT NOT NULL, event_name TEXT NOT NULL,
    external_customer_id TEXT NOT NULL, external_agent_id TEXT NOT NULL,
    enable_cost_tracing INTEGER NOT NULL, cost_tracing_rejected INTEGER NOT NULL,
    rejection_reason TEXT, idempotency_key TEXT NOT NULL UNIQUE, data_json TEXT,
    created_at {real} NOT NULL
);
CREATE INDEX signals_trace ON signals (trace_id);
INSERT INTO meta (key, value) VALUES ('schema_version', '1')
"""

_TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY", "count": "INTEGER", "money": "TEXT",
               "real": "REAL"},
    "postgresql": {"id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                   "count": "BIGINT", "money": "NUMERIC", "real": "DOUBLE PRECISION"},
}


def _make_v1_ledger(url: str, calls: list, signals: list) -> None:
    """A ledger exactly as paid-hooks wrote it before schema version 2."""
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    statements = [s for s in _V1_SCHEMA.format(**_TYPES[backend]).split(";") if s.strip()]
    dialect = SQLiteLedger.dialect if backend == "sqlite" else __import__(
        "paid_hooks.ledger.postgres", fromlist=["POSTGRES"]).POSTGRES
    if backend == "sqlite":
        conn = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        for statement in statements:
            conn.execute(statement)
        conn.executemany(dialect.insert_call(), [call_row(c) for c in calls])
        conn.executemany(dialect.insert_signal(), [signal_row(s) for s in signals])
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        for statement in statements:
            pg.execute(statement)
        with pg.cursor() as cur:
            cur.executemany(dialect.insert_call(), [call_row(c) for c in calls])
            cur.executemany(dialect.insert_signal(), [signal_row(s) for s in signals])


def test_a_version_1_ledger_is_migrated_when_opened(open_backend, ledger_url):
    rng = random.Random(3)
    _make_v1_ledger(ledger_url, [random_call(rng, 6, n) for n in range(50)],
                    [random_signal(rng, 6, n) for n in range(20)])
    ledger = open_backend()
    assert_reports_match(ledger, _exact(ledger_url))
    assert ledger._query("SELECT value FROM meta WHERE key = 'schema_version'") == [
        {"value": str(SCHEMA_VERSION)}]
    write_randomly(ledger, rng)  # and it goes on as any ledger
    assert_reports_match(ledger, _exact(ledger_url))
    assert_reports_match(open_backend(), _exact(ledger_url))


def test_a_ledger_of_a_newer_schema_is_refused_with_a_clear_error(open_backend, ledger_url):
    open_backend().write([priced(1, "0.5")], [])
    run_sql(ledger_url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match=r"schema version 99, newer than this paid-hooks"):
        open_backend().signals()


# -- rows ---------------------------------------------------------------------------------

def _v1_call_row(rec) -> tuple:
    """The row builder of schema version 1, verbatim in effect: the values stored."""
    call, usage = rec.call, rec.call.usage
    dedupe = f"resp:{call.response_id}" if call.response_id else f"span:{rec.span_id:016x}"
    pico, inexact, cost_usd = None, False, None
    if rec.price is not None:
        pico, inexact = _to_pico(rec.price.amount)
        cost_usd = _money_text(rec.price.amount)
    return (
        format(rec.trace_id, "032x"), format(rec.span_id, "016x"), dedupe, call.richness(),
        rec.external_customer_id, rec.external_agent_id,
        call.provider, call.operation, call.request_model, call.response_model, call.model,
        call.captured_by, call.response_id, int(call.streaming), call.status.value,
        call.error_type,
        usage.input_tokens if usage else None, usage.output_tokens if usage else None,
        usage.cache_read_tokens if usage else None, usage.cache_write_tokens if usage else None,
        usage.reasoning_tokens if usage else None, usage.to_json() if usage else None,
        rec.cost_status.value, rec.cost_reason, cost_usd, pico, int(inexact),
        rec.price.price_source if rec.price else None, call.service_tier,
        call.start_time_ns / 1e9, call.latency_ms,
    )


@pytest.mark.parametrize("seed", range(5))
def test_call_rows_hold_what_they_always_held(seed):
    rng = random.Random(seed)
    for n in range(300):
        rec = random_call(rng, 5, n)
        assert call_row(rec) == _v1_call_row(rec)
        assert [type(v) for v in call_row(rec)] == [type(v) for v in _v1_call_row(rec)]


def test_usage_columns_know_every_count_of_usage():
    """The row builder writes usage_json field by field: a count added to Usage must be
    added there too."""
    from dataclasses import fields

    from paid_hooks.ledger._common import _usage_columns

    counts = [f.name for f in fields(Usage) if f.name not in ("units", "estimated")]
    for n in range(len(counts) + 1):
        usage = Usage(**{name: 10 + i for i, name in enumerate(counts[:n])})
        columns, reported = _usage_columns(usage)
        assert (columns[5], reported) == (usage.to_json(), usage.reported_fields())
    odd = Usage(input_tokens=True, output_tokens=2.5)  # type: ignore[arg-type]
    assert _usage_columns(odd)[0][5] == odd.to_json()


@pytest.mark.parametrize("amount", [
    "0", "0.0035", "10", "1E+1", "7.5E-8", "0.000000000001", "0.0000000000004",
    "1.0000000000004", "123456789.123456789012", "-0.5", "-1E-13", "5.000", "0E-12"])
def test_money_columns_and_report_text(amount):
    from paid_hooks.ledger._common import _money, _usd

    value = Decimal(amount)
    pico, inexact = _to_pico(value)
    assert _money(value) == (_money_text(value), pico, int(inexact))
    assert pico_usd(pico) == _usd(Decimal(pico) / (Decimal(10) ** 12))


def test_none_is_stored_as_null_through_the_fast_binding(tmp_path):
    ledger = SQLiteLedger(tmp_path / "l.db")
    unknown = priced(1, None, status=CostStatus.USAGE_UNKNOWN, customer=None)
    ledger.write([replace(unknown, call=replace(unknown.call, usage=None))], [])
    [row] = ledger._query("SELECT typeof(input_tokens) AS t, typeof(cost_usd) AS c, "
                          "typeof(external_customer_id) AS e FROM ai_calls")
    assert row == {"t": "null", "c": "null", "e": "null"}


# -- the report queries stay off the call rows ---------------------------------------------

def _plan(ledger: SQLiteLedger, run: Callable[[], object]) -> str:
    """The query plans of the statements ``run`` executes (SQLite), as one text."""
    conn = ledger._conn()
    executed: list[str] = []
    conn.set_trace_callback(executed.append)  # the SQL with its parameters filled in
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    queries = [q for q in executed if q.lstrip().upper().startswith(("SELECT", "WITH"))]
    return "\n".join(f"{q}\n" + "\n".join(str(row) for row in conn.execute(
        "EXPLAIN QUERY PLAN " + q)) for q in queries)


def test_signal_and_customer_reports_read_summaries_not_call_rows(tmp_path):
    """A regression guard for the cost of the reports: they never scan ai_calls."""
    ledger = SQLiteLedger(tmp_path / "l.db")
    write_randomly(ledger, random.Random(1))
    for run in (ledger.signals, lambda: ledger.costs("customer"),
                lambda: ledger.outcome_counts("customer"),
                lambda: json.loads("".join(ledger.signals_json() or ""))):
        plan = _plan(ledger, run)
        # ai_calls is only looked at for its highest id (an index seek), never scanned
        assert "SCAN ai_calls" not in plan and "FROM ai_calls c" not in plan, plan
        assert "trace_" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
