"""What every SQL ledger shares: the schema, the row builders, the reports.

A backend (:class:`~paid_hooks.ledger.sqlite.SQLiteLedger`,
:class:`~paid_hooks.ledger.postgres.PostgresLedger`) subclasses :class:`SQLLedger` and
supplies a :class:`Dialect` plus its primitives: run a query, write rows in one
transaction, close. The SQL text and the shaping of report rows live here once, so the
backends return the same row dicts for the same records.

Money: ``cost_usd`` is the exact decimal amount (text in SQLite, ``NUMERIC`` in
PostgreSQL) and ``cost_pusd`` the same amount as an integer count of pico-dollars
(1e-12 USD). Reports add ``cost_pusd`` in SQLite (it has no exact decimal type) and
``cost_usd`` in PostgreSQL. Every price genai-prices knows is a whole number of
pico-dollars, so both give the same totals; an amount that is not (``cost_inexact``) is
rounded in ``cost_pusd`` only.

Attribution is by trace id: a trace's cost-tracing signal is its earliest
``enable_cost_tracing`` signal that was not rejected, so it holds however late or in
whatever order the rows of one trace arrive.

The reports read two summary tables kept up to date in the transaction of every write
(schema version 2), so that they never add up the call rows themselves:

* ``trace_costs``: per trace and cost bucket (0 priced, 1 unpriced, 2 usage unknown,
  3 no charge), the number of calls, their token sums, their cost sum and how many of
  them have a cost. A new call row is added to its bucket; an update (a richer duplicate
  of the same provider response replacing the row) takes the old values out and puts the
  new ones in, so the sums stay exact under de-duplication; a deleted row is taken out.
* ``trace_signals``: per trace, its cost-tracing signal (the earliest accepted one).

PostgreSQL keeps both with statement-level triggers (one aggregated upsert per INSERT
statement). SQLite has only row triggers, and one firing per inserted row costs more
than the insert; so there the writer counts its new call rows with one statement before
it commits (``meta.summarized_through`` records up to which row id), and triggers handle
updates and deletes of counted rows and every signal. Rows written by an older
paid-hooks, which counts nothing, are counted by the next write or report.

A ledger of schema version 1 is migrated when it is opened: the summaries are built from
its rows, in one transaction (about 2 s per million calls on SQLite). A ledger of a newer
schema version is refused with :class:`LedgerError`.
"""

from __future__ import annotations

import abc
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import chain
from typing import Any

from paid_hooks.model import AICall, CostStatus, Price, PricedCall, SignalRecord, Usage

__all__ = ["PICO", "SCHEMA_VERSION", "Dialect", "LedgerError", "SQLLedger", "call_row",
           "signal_row"]

PICO = Decimal(10) ** 12
SCHEMA_VERSION = 2


class LedgerError(RuntimeError):
    """The ledger could not be reached or written (the message never holds credentials)."""


_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ai_calls (
    id {id},
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    richness INTEGER NOT NULL,
    external_customer_id TEXT,
    external_agent_id TEXT,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    request_model TEXT,
    response_model TEXT,
    model TEXT,
    captured_by TEXT NOT NULL,
    response_id TEXT,
    streaming INTEGER NOT NULL,
    call_status TEXT NOT NULL,
    error_type TEXT,
    input_tokens {count},
    output_tokens {count},
    cache_read_tokens {count},
    cache_write_tokens {count},
    reasoning_tokens {count},
    usage_json TEXT,
    cost_status TEXT NOT NULL,
    cost_reason TEXT,
    cost_usd {money},
    cost_pusd {count},
    cost_inexact INTEGER NOT NULL DEFAULT 0,
    price_source TEXT,
    service_tier TEXT,
    started_at {real} NOT NULL,
    duration_ms {real} NOT NULL,
    UNIQUE (trace_id, dedupe_key)
);
CREATE TABLE IF NOT EXISTS signals (
    id {id},
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    external_customer_id TEXT NOT NULL,
    external_agent_id TEXT NOT NULL,
    enable_cost_tracing INTEGER NOT NULL,
    cost_tracing_rejected INTEGER NOT NULL,
    rejection_reason TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    data_json TEXT,
    created_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_trace ON signals (trace_id);
CREATE INDEX IF NOT EXISTS signals_created ON signals (created_at);
CREATE TABLE IF NOT EXISTS trace_costs (
    trace_id TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    calls {count} NOT NULL,
    input_tokens {count} NOT NULL,
    output_tokens {count} NOT NULL,
    cache_read_tokens {count} NOT NULL,
    reasoning_tokens {count} NOT NULL,
    cost {cost_sum_type} NOT NULL,
    costed {count} NOT NULL,
    PRIMARY KEY (trace_id, bucket)
){without_rowid};
CREATE TABLE IF NOT EXISTS trace_signals (
    trace_id TEXT PRIMARY KEY,
    signal_id {count} NOT NULL,
    created_at {real} NOT NULL,
    event_name TEXT NOT NULL,
    external_customer_id TEXT NOT NULL,
    external_agent_id TEXT NOT NULL
){without_rowid};
"""

# An index of schema version 1 that nothing needs: ai_calls (trace_id) is the prefix of
# the UNIQUE (trace_id, dedupe_key) index. Dropping it makes every insert cheaper (one
# B-tree insert at a random place less).
_OBSOLETE = ("DROP INDEX IF EXISTS ai_calls_trace",)

BUCKETS = {"unpriced": 1, "usage_unknown": 2, "no_charge": 3}
"""Cost buckets other than 0 (priced, and any other status): the report's special rows."""


def _bucket(row: str) -> str:
    """SQL: the cost bucket of an ``ai_calls`` row (``new``, ``old``, an alias)."""
    whens = " ".join(f"WHEN '{status}' THEN {n}" for status, n in BUCKETS.items())
    return f"CASE {row}.cost_status {whens} ELSE 0 END"


_SUMMED = ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens")
_COST_COLUMNS = ("calls", *_SUMMED, "cost", "costed")


def _contribution(row: str, cost: str, sign: str = "") -> list[str]:
    """SQL: what one ``ai_calls`` row adds to its ``trace_costs`` bucket, column by column."""
    return ([f"{sign}1"] + [f"{sign}COALESCE({row}.{c}, 0)" for c in _SUMMED]
            + [f"{sign}COALESCE({row}.{cost}, 0)",
               f"{sign}(CASE WHEN {row}.{cost} IS NULL THEN 0 ELSE 1 END)"])


def _add_to_costs(cost: str, where: str | None = None) -> str:
    """SQL: add ``ai_calls`` rows to ``trace_costs``, one by one: a trigger's ``new`` row,
    or (``where``) the rows of ``ai_calls c WHERE ...``."""
    row = "new" if where is None else "c"
    values = ", ".join([f"{row}.trace_id", _bucket(row), *_contribution(row, cost)])
    select = f"VALUES ({values})" if where is None else f"SELECT {values} FROM ai_calls c {where}"
    sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COST_COLUMNS)
    return (f"INSERT INTO trace_costs (trace_id, bucket, {', '.join(_COST_COLUMNS)}) "
            f"{select} ON CONFLICT (trace_id, bucket) DO UPDATE SET {sets}")


SUMMARIZED_THROUGH = "summarized_through"
"""SQLite: the ``meta`` key of the highest ``ai_calls.id`` counted in ``trace_costs``."""

_SUMMARIZED_THROUGH = (f"(SELECT CAST(value AS INTEGER) FROM meta "
                       f"WHERE key = '{SUMMARIZED_THROUGH}')")


def sqlite_summarize_calls() -> list[str]:
    """SQL (SQLite): count the calls above ``summarized_through`` into ``trace_costs``.

    SQLite has only row triggers, and firing one per inserted row costs more than the
    insert itself; so a writer adds its new rows (new rows get ids above every existing
    one), summed per trace and bucket, with one statement before it commits. An update of
    a row already counted (a richer duplicate) is taken care of by a trigger; an update of
    a row not yet counted needs nothing, its final values get counted.
    """
    sums = ", ".join(f"SUM({v})" for v in _contribution("c", "cost_pusd"))
    sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COST_COLUMNS)
    return [
        # One upsert per trace and bucket, not per row. "+c.trace_id": group the new rows
        # in a sort of their own; grouping by the bare column lets SQLite walk the whole
        # (trace_id, dedupe_key) index instead, which reads every row of the ledger.
        f"INSERT INTO trace_costs (trace_id, bucket, {', '.join(_COST_COLUMNS)}) "
        f"SELECT c.trace_id, {_bucket('c')} AS b, {sums} FROM ai_calls c "
        f"WHERE c.id > {_SUMMARIZED_THROUGH} GROUP BY +c.trace_id, b "
        f"ON CONFLICT (trace_id, bucket) DO UPDATE SET {sets}",
        f"UPDATE meta SET value = (SELECT COALESCE(MAX(id), 0) FROM ai_calls) "
        f"WHERE key = '{SUMMARIZED_THROUGH}'",
    ]


SQLITE_BEHIND = (f"SELECT (SELECT COALESCE(MAX(id), 0) FROM ai_calls) > "
                 f"COALESCE({_SUMMARIZED_THROUGH}, 0)")
"""SQL (SQLite): whether some calls are not counted in ``trace_costs`` yet (written by an
older paid-hooks, which does not count them)."""


def _sqlite_triggers(cost: str) -> list[str]:
    take_out = ", ".join(f"{c} = {c} - {v}" for c, v in
                         zip(_COST_COLUMNS, _contribution("old", cost), strict=True))
    where_old = f"trace_id = old.trace_id AND bucket = {_bucket('old')}"
    signal = _TRACE_SIGNAL_UPSERT.format(source=(
        "VALUES (new.trace_id, new.id, new.created_at, new.event_name, "
        "new.external_customer_id, new.external_agent_id)"))
    return [
        f"""CREATE TRIGGER IF NOT EXISTS ai_calls_costs_update AFTER UPDATE ON ai_calls
WHEN old.id <= {_SUMMARIZED_THROUGH}
BEGIN
UPDATE trace_costs SET {take_out} WHERE {where_old};
DELETE FROM trace_costs WHERE {where_old} AND calls = 0;
{_add_to_costs(cost)};
END""",
        f"""CREATE TRIGGER IF NOT EXISTS ai_calls_costs_delete AFTER DELETE ON ai_calls
WHEN old.id <= {_SUMMARIZED_THROUGH}
BEGIN
UPDATE trace_costs SET {take_out} WHERE {where_old};
DELETE FROM trace_costs WHERE {where_old} AND calls = 0;
END""",
        f"""CREATE TRIGGER IF NOT EXISTS signals_cost_signal AFTER INSERT ON signals
WHEN new.enable_cost_tracing = 1 AND new.cost_tracing_rejected = 0
BEGIN {signal} END""",
        f"""CREATE TRIGGER IF NOT EXISTS signals_cost_signal_delete AFTER DELETE ON signals
WHEN old.id = (SELECT signal_id FROM trace_signals WHERE trace_id = old.trace_id)
BEGIN {_recount_trace_signal("old.trace_id")} END""",
        f"""CREATE TRIGGER IF NOT EXISTS signals_cost_signal_update AFTER UPDATE ON signals
BEGIN {_recount_trace_signal("old.trace_id")} {_recount_trace_signal("new.trace_id")} END""",
        f"INSERT INTO meta (key, value) VALUES ('{SUMMARIZED_THROUGH}', "
        f"(SELECT COALESCE(MAX(id), 0) FROM ai_calls)) "
        f"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ]


def _recount_trace_signal(trace: str) -> str:
    """SQL (SQLite trigger): find the cost signal of a trace again, after a signal row was
    deleted or changed (not something paid-hooks does; a user pruning the ledger may)."""
    return (f"DELETE FROM trace_signals WHERE trace_id = {trace}; "
            "INSERT INTO trace_signals (trace_id, signal_id, created_at, event_name, "
            "external_customer_id, external_agent_id) SELECT trace_id, id, created_at, "
            f"event_name, external_customer_id, external_agent_id FROM signals "
            f"WHERE trace_id = {trace} AND enable_cost_tracing = 1 "
            "AND cost_tracing_rejected = 0 ORDER BY created_at, id LIMIT 1;")


_TRACE_SIGNAL_UPSERT = """INSERT INTO trace_signals (trace_id, signal_id, created_at,
    event_name, external_customer_id, external_agent_id)
{source}
ON CONFLICT (trace_id) DO UPDATE SET signal_id = excluded.signal_id,
    created_at = excluded.created_at, event_name = excluded.event_name,
    external_customer_id = excluded.external_customer_id,
    external_agent_id = excluded.external_agent_id
WHERE (excluded.created_at, excluded.signal_id)
    < (trace_signals.created_at, trace_signals.signal_id);"""

# Statement-level triggers with transition tables (PostgreSQL >= 10): one aggregated
# upsert per INSERT statement instead of one per row. For INSERT ... ON CONFLICT DO
# UPDATE, PostgreSQL shows the inserted rows to the INSERT trigger and the updated ones
# (before and after) to the UPDATE trigger. ORDER BY: rows are locked in key order, so
# concurrent writers do not deadlock on each other's summaries.
_PG_COST_UPSERT = """INSERT INTO trace_costs AS t (trace_id, bucket, {columns})
SELECT trace_id, bucket, {sums} FROM ({rows}) d
GROUP BY trace_id, bucket ORDER BY trace_id, bucket
ON CONFLICT (trace_id, bucket) DO UPDATE SET {sets};"""


def _pg_rows(table: str, cost: str, sign: str = "") -> str:
    columns = ", ".join(f"{v} AS {c}" for c, v in
                        zip(_COST_COLUMNS, _contribution(table, cost, sign), strict=True))
    return f"SELECT {table}.trace_id, {_bucket(table)} AS bucket, {columns} FROM {table}"


def _pg_triggers(cost: str) -> list[str]:
    upsert = _PG_COST_UPSERT.format(
        columns=", ".join(_COST_COLUMNS),
        sums=", ".join(f"SUM({c})" for c in _COST_COLUMNS),
        sets=", ".join(f"{c} = t.{c} + excluded.{c}" for c in _COST_COLUMNS), rows="{rows}")
    inserted = upsert.format(rows=_pg_rows("new_calls", cost))
    updated = upsert.format(rows=f"{_pg_rows('new_calls', cost)} UNION ALL "
                                 f"{_pg_rows('old_calls', cost, '-')}")
    deleted = upsert.format(rows=_pg_rows("old_calls", cost, "-"))
    emptied = ("DELETE FROM trace_costs t USING old_calls o WHERE t.trace_id = o.trace_id "
               f"AND t.bucket = {_bucket('o')} AND t.calls = 0;")
    recount = ("DELETE FROM trace_signals WHERE trace_id IN (SELECT trace_id FROM changed); "
               + _TRACE_SIGNAL_UPSERT.format(source=(
                   "SELECT DISTINCT ON (trace_id) trace_id, id, created_at, event_name, "
                   "external_customer_id, external_agent_id FROM signals "
                   "WHERE trace_id IN (SELECT trace_id FROM changed) "
                   "AND enable_cost_tracing = 1 AND cost_tracing_rejected = 0 "
                   "ORDER BY trace_id, created_at, id")))
    signal = _TRACE_SIGNAL_UPSERT.format(source=(
        "SELECT DISTINCT ON (trace_id) trace_id, id, created_at, event_name, "
        "external_customer_id, external_agent_id FROM new_signals "
        "WHERE enable_cost_tracing = 1 AND cost_tracing_rejected = 0 "
        "ORDER BY trace_id, created_at, id"))

    def function(name: str, body: str) -> str:
        return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$paid_hooks$ BEGIN {body} RETURN NULL; END $paid_hooks$")

    def trigger(name: str, event: str, table: str, tables: str, func: str) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {name} ON {table}",
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables} "
                f"FOR EACH STATEMENT EXECUTE PROCEDURE {func}()"]

    return [
        function("paid_hooks_calls_inserted", inserted),
        function("paid_hooks_calls_updated", updated + "\n" + emptied),
        function("paid_hooks_calls_deleted", deleted + "\n" + emptied),
        function("paid_hooks_signals_inserted", signal),
        function("paid_hooks_signals_deleted",
                 recount.replace("FROM changed", "FROM old_signals")),
        function("paid_hooks_signals_updated", recount.replace(
            "FROM changed", "FROM (SELECT trace_id FROM old_signals UNION "
                            "SELECT trace_id FROM new_signals) changed")),
        *trigger("ai_calls_costs_insert", "INSERT", "ai_calls", "NEW TABLE AS new_calls",
                 "paid_hooks_calls_inserted"),
        *trigger("ai_calls_costs_update", "UPDATE", "ai_calls",
                 "OLD TABLE AS old_calls NEW TABLE AS new_calls", "paid_hooks_calls_updated"),
        *trigger("ai_calls_costs_delete", "DELETE", "ai_calls", "OLD TABLE AS old_calls",
                 "paid_hooks_calls_deleted"),
        *trigger("signals_cost_signal", "INSERT", "signals", "NEW TABLE AS new_signals",
                 "paid_hooks_signals_inserted"),
        *trigger("signals_cost_signal_delete", "DELETE", "signals", "OLD TABLE AS old_signals",
                 "paid_hooks_signals_deleted"),
        *trigger("signals_cost_signal_update", "UPDATE", "signals",
                 "OLD TABLE AS old_signals NEW TABLE AS new_signals",
                 "paid_hooks_signals_updated"),
    ]


def _rebuild_summaries(cost: str) -> list[str]:
    """SQL: the summary tables built from scratch out of ``ai_calls`` and ``signals``."""
    sums = ", ".join(f"SUM({v})" for v in _contribution("c", cost))
    return [
        "DELETE FROM trace_costs",
        "DELETE FROM trace_signals",
        f"INSERT INTO trace_costs (trace_id, bucket, {', '.join(_COST_COLUMNS)}) "
        f"SELECT c.trace_id, {_bucket('c')}, {sums} FROM ai_calls c "
        f"GROUP BY c.trace_id, {_bucket('c')}",
        "INSERT INTO trace_signals (trace_id, signal_id, created_at, event_name, "
        "external_customer_id, external_agent_id) "
        "SELECT trace_id, id, created_at, event_name, external_customer_id, external_agent_id "
        "FROM (SELECT s.*, ROW_NUMBER() OVER (PARTITION BY trace_id ORDER BY created_at, id) "
        "AS n FROM signals s WHERE enable_cost_tracing = 1 AND cost_tracing_rejected = 0) f "
        "WHERE n = 1",
    ]


_SCHEMA_VERSION_ROW = (
    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value")

_INSERT_CALL = """
INSERT INTO ai_calls (
    trace_id, span_id, dedupe_key, richness, external_customer_id, external_agent_id,
    provider, operation, request_model, response_model, model, captured_by, response_id,
    streaming, call_status, error_type, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, usage_json, cost_status, cost_reason, cost_usd,
    cost_pusd, cost_inexact, price_source, service_tier, started_at, duration_ms
) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (trace_id, dedupe_key) DO UPDATE SET
    span_id = excluded.span_id, richness = excluded.richness,
    external_customer_id = COALESCE(ai_calls.external_customer_id, excluded.external_customer_id),
    external_agent_id = COALESCE(ai_calls.external_agent_id, excluded.external_agent_id),
    provider = excluded.provider, operation = excluded.operation,
    request_model = COALESCE(excluded.request_model, ai_calls.request_model),
    response_model = COALESCE(excluded.response_model, ai_calls.response_model),
    model = excluded.model, captured_by = excluded.captured_by,
    streaming = excluded.streaming, call_status = excluded.call_status,
    error_type = excluded.error_type, input_tokens = excluded.input_tokens,
    output_tokens = excluded.output_tokens, cache_read_tokens = excluded.cache_read_tokens,
    cache_write_tokens = excluded.cache_write_tokens,
    reasoning_tokens = excluded.reasoning_tokens, usage_json = excluded.usage_json,
    cost_status = excluded.cost_status, cost_reason = excluded.cost_reason,
    cost_usd = excluded.cost_usd, cost_pusd = excluded.cost_pusd,
    cost_inexact = excluded.cost_inexact, price_source = excluded.price_source,
    service_tier = COALESCE(excluded.service_tier, ai_calls.service_tier)
WHERE excluded.richness > ai_calls.richness
"""

CALL_COLUMNS = tuple(
    _INSERT_CALL.split("(", 1)[1].split(")", 1)[0].replace(" ", "").replace("\n", "").split(","))
"""The ``ai_calls`` columns of :func:`call_row`, in order."""

_INSERT_SIGNAL = """
INSERT INTO signals (
    trace_id, span_id, event_name, external_customer_id, external_agent_id,
    enable_cost_tracing, cost_tracing_rejected, rejection_reason, idempotency_key,
    data_json, created_at
) VALUES (?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (idempotency_key) DO NOTHING
"""

SIGNAL_COLUMNS = tuple(
    _INSERT_SIGNAL.split("(", 1)[1].split(")", 1)[0].replace(" ", "").replace("\n", "")
    .split(","))
"""The ``signals`` columns of :func:`signal_row`, in order."""

# Each signal, with the totals of its trace when it is the trace's cost signal. The totals
# are added up first, for every cost signal, walking trace_signals and trace_costs in
# their common key order (trace id), then looked up by signal id: looking them up by
# trace id for each signal, in time order, costs three times as much (a search of a
# B-tree by a random text key per signal and bucket).
SIGNALS_FROM = """
WITH totals AS {materialized}(
    SELECT ts.signal_id, SUM(c.cost) AS cost, SUM(c.calls) AS calls,
           SUM(c.input_tokens) AS input_tokens, SUM(c.output_tokens) AS output_tokens,
           SUM(CASE WHEN c.bucket = 1 THEN c.calls ELSE 0 END) AS unpriced,
           SUM(CASE WHEN c.bucket = 2 THEN c.calls ELSE 0 END) AS unknown
    FROM trace_signals ts LEFT JOIN trace_costs c ON c.trace_id = ts.trace_id
    GROUP BY ts.trace_id, ts.signal_id
)
{select}
FROM signals s {index_hint}
LEFT JOIN totals t ON t.signal_id = s.id
{where}
ORDER BY s.created_at, s.id"""

SIGNAL_TOTALS = {"cost": "COALESCE(t.cost, 0)",
                 **{column: f"CAST(COALESCE(t.{column}, 0) AS BIGINT)" for column in (
                     "calls", "input_tokens", "output_tokens", "unpriced", "unknown")}}
"""SQL: a signal's totals, from :data:`SIGNALS_FROM` (0 unless it is attributed)."""

_SIGNALS = f"""SELECT s.event_name, s.external_customer_id, s.external_agent_id, s.trace_id,
       s.enable_cost_tracing, t.signal_id IS NOT NULL AS attributed, s.rejection_reason,
       {", ".join(SIGNAL_TOTALS.values())},
       s.idempotency_key, s.data_json, s.created_at"""


# kind: 0 a group of the report, 1-3 a cost bucket of its own (unpriced, usage unknown,
# no charge), 4 priced but unattributed (the trace has no cost-tracing signal).
_KIND = ("CASE WHEN {bucket} <> 0 THEN {bucket} "
         "WHEN ts.trace_id IS NULL THEN 4 ELSE 0 END")

# Totals by a property of the trace's cost signal: from the per-trace summaries. Each
# (trace, bucket) is one row, and a trace is in one group, so COUNT(*) counts traces.
_COSTS_BY_SIGNAL = """
SELECT {kind} AS kind, CASE WHEN {kind} = 0 THEN ts.{column} END AS grp,
       CAST(SUM(c.calls) AS BIGINT), CAST(SUM(c.input_tokens) AS BIGINT),
       CAST(SUM(c.output_tokens) AS BIGINT), CAST(SUM(c.cache_read_tokens) AS BIGINT),
       CAST(SUM(c.reasoning_tokens) AS BIGINT), SUM(c.cost), SUM(c.costed),
       COUNT(*)
FROM trace_costs c LEFT JOIN trace_signals ts ON ts.trace_id = c.trace_id
GROUP BY 1, 2
"""

# Totals by a property of the call itself (model, provider): from the call rows.
_COSTS_BY_CALL = """
SELECT {kind} AS kind, CASE WHEN {kind} = 0 THEN c.{column} END AS grp,
       COUNT(*), SUM(COALESCE(c.input_tokens, 0)), SUM(COALESCE(c.output_tokens, 0)),
       SUM(COALESCE(c.cache_read_tokens, 0)), SUM(COALESCE(c.reasoning_tokens, 0)),
       SUM(c.{cost}), COUNT(c.{cost}), COUNT(DISTINCT c.trace_id)
FROM ai_calls c LEFT JOIN trace_signals ts ON ts.trace_id = c.trace_id
GROUP BY 1, 2
"""

_SIGNAL_GROUPS = {"signal": "event_name", "customer": "external_customer_id",
                  "agent": "external_agent_id"}
_CALL_GROUPS = {"model": "model", "provider": "provider"}

_SPECIAL_NAMES = {1: "(unpriced)", 2: "(usage unknown)", 3: "(failed, no charge)",
                  4: "(unattributed)"}
_SPECIAL_KINDS = {1: "unpriced", 2: "usage_unknown", 3: "no_charge", 4: "unattributed"}


@dataclass(frozen=True)
class Dialect:
    """How one database spells the shared SQL.

    ``placeholder`` replaces each ``?`` parameter marker; ``id_column``, ``count``,
    ``money`` and ``real`` are column types; ``cost_column`` is the ``ai_calls`` column
    that reports add (``cost_sum_type`` its sum's type); ``cost_total`` turns a sum into a
    :class:`~decimal.Decimal` (``None`` for NULL) and ``cost_text`` into the report's
    decimal string (``"0"`` for nothing).
    """

    placeholder: str
    id_column: str
    count: str
    money: str
    real: str
    cost_column: str
    cost_sum_type: str
    cost_total: Callable[[Any], Decimal | None]
    cost_text: Callable[[Any], str]
    without_rowid: str = ""
    signals_index_hint: str = ""
    """Appended to ``FROM signals s`` in the signals report (SQLite: walk the created_at
    index, so that the rows come out ordered without a sort)."""
    triggers: Callable[[str], list[str]] = field(default=_sqlite_triggers)
    materialize: bool = True
    """Whether ``WITH ... AS MATERIALIZED`` is understood (SQLite >= 3.35, PostgreSQL >= 12)."""

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def tables(self) -> list[str]:
        """``CREATE ... IF NOT EXISTS`` statements of every table and index."""
        script = _TABLES.format(id=self.id_column, count=self.count, money=self.money,
                                real=self.real, cost_sum_type=self.cost_sum_type,
                                without_rowid=self.without_rowid)
        return [s.strip() for s in script.split(";") if s.strip()]

    def migration(self, version: int | None) -> list[str]:
        """Statements (no parameters) that bring a ledger of ``version`` to this one.

        ``None``: a new or empty database. The summaries are rebuilt from the rows, so
        running this twice does no harm.
        """
        del version  # version 1 and new ledgers take the same steps
        return [*self.tables(), *_OBSOLETE, *self.triggers(self.cost_column),
                *_rebuild_summaries(self.cost_column)]

    def schema_version_row(self) -> tuple[str, tuple[str]]:
        return self.sql(_SCHEMA_VERSION_ROW), (str(SCHEMA_VERSION),)

    def insert_call(self) -> str:
        return self.sql(_INSERT_CALL)

    def insert_signal(self) -> str:
        return self.sql(_INSERT_SIGNAL)


def check_schema_version(version: int | None, where: str) -> None:
    """Raise :class:`LedgerError` for a ledger made by a newer paid-hooks."""
    if version is not None and version > SCHEMA_VERSION:
        raise LedgerError(f"{where}: the ledger has schema version {version}, newer than "
                          f"this paid-hooks knows ({SCHEMA_VERSION}); upgrade paid-hooks")


def parse_schema_version(value: Any) -> int | None:
    return None if value is None else int(value)


# -- rows -------------------------------------------------------------------------------

_TEN12 = 10**12


def _to_pico(amount: Decimal) -> tuple[int, bool]:
    scaled = amount * PICO
    rounded = scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(rounded), rounded != scaled


def _money_text(amount: Decimal) -> str:
    """``str(amount)``, without a positive exponent (``1E+1`` -> ``10``).

    A ``NUMERIC`` column gives back exactly this text, so every backend returns the same
    ``cost_usd`` string for the same amount.
    """
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        amount = amount.quantize(Decimal(1))
    return str(amount)


_SCALE = tuple(10 ** (12 - n) for n in range(13))


def _money(amount: Decimal) -> tuple[str, int, int]:
    """``(cost_usd, cost_pusd, cost_inexact)`` of an amount: :func:`_money_text` and
    :func:`_to_pico`, read off the decimal string in the common case (plain notation,
    at most 12 decimals: an exact whole number of pico-dollars)."""
    text = str(amount)
    whole, _, fraction = text.partition(".")
    if whole.isdigit() and len(fraction) <= 12 and (fraction.isdigit() or not fraction):
        return text, int(whole + fraction) * _SCALE[len(fraction)], 0
    pico, inexact = _to_pico(amount)
    return _money_text(amount), pico, int(inexact)


_NO_USAGE = (None, None, None, None, None, None)


def _usage_columns_slowly(usage: Usage, null: Any = None) -> tuple[tuple[Any, ...], int]:
    counts = (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens,
              usage.cache_write_tokens, usage.reasoning_tokens)
    return ((*(null if value is None else value for value in counts), usage.to_json()),
            usage.reported_fields())


def _usage_columns(usage: Usage, null: Any = None) -> tuple[tuple[Any, ...], int]:
    """The token columns and ``usage_json`` (:meth:`Usage.to_json`) of a call's row, and
    :meth:`Usage.reported_fields`, reading each field once (the tests hold them equal).
    ``null`` stands for a count not reported (SQLite binds a NaN, not ``None``).

    The common usage (plain int counts) is written out field by field, in JSON key order,
    without a loop: a third of the cost of :meth:`Usage.to_json` plus
    :meth:`Usage.reported_fields`.
    """
    if usage.units or usage.estimated:
        return _usage_columns_slowly(usage, null)
    parts: list[str] = []
    add = parts.append
    cache_read = usage.cache_read_tokens
    if cache_read is not None:
        if type(cache_read) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"cache_read_tokens":{cache_read}')
    value = usage.cache_write_1h_tokens
    if value is not None:
        if type(value) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"cache_write_1h_tokens":{value}')
    value = usage.cache_write_5m_tokens
    if value is not None:
        if type(value) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"cache_write_5m_tokens":{value}')
    cache_write = usage.cache_write_tokens
    if cache_write is not None:
        if type(cache_write) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"cache_write_tokens":{cache_write}')
    value = usage.input_audio_tokens
    if value is not None:
        if type(value) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"input_audio_tokens":{value}')
    value = usage.input_image_tokens
    if value is not None:
        if type(value) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"input_image_tokens":{value}')
    input_tokens = usage.input_tokens
    if input_tokens is not None:
        if type(input_tokens) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"input_tokens":{input_tokens}')
    value = usage.output_audio_tokens
    if value is not None:
        if type(value) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"output_audio_tokens":{value}')
    value = usage.output_image_tokens
    if value is not None:
        if type(value) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"output_image_tokens":{value}')
    output_tokens = usage.output_tokens
    if output_tokens is not None:
        if type(output_tokens) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"output_tokens":{output_tokens}')
    reasoning = usage.reasoning_tokens
    if reasoning is not None:
        if type(reasoning) is not int:
            return _usage_columns_slowly(usage, null)
        add(f'"reasoning_tokens":{reasoning}')
    return ((null if input_tokens is None else input_tokens,
             null if output_tokens is None else output_tokens,
             null if cache_read is None else cache_read,
             null if cache_write is None else cache_write,
             null if reasoning is None else reasoning,
             "{" + ",".join(parts) + "}"), len(parts))


def call_row(rec: PricedCall, null: Any = None) -> tuple[Any, ...]:
    """The ``ai_calls`` row of one priced call, in :data:`CALL_COLUMNS` order, with
    ``null`` in place of every ``None`` (a backend whose driver binds some other value
    faster, e.g. SQLite's NaN, passes it here rather than mapping the tuple again)."""
    return call_row_parts(null, rec.call, rec.trace_id, rec.span_id,
                          rec.external_customer_id, rec.external_agent_id, rec.cost_status,
                          rec.price, rec.cost_reason)


def call_row_parts(null: Any, call: AICall, trace_id: int, span_id: int,
                   customer: str | None, agent: str | None, cost_status: CostStatus,
                   price: Price | None, reason: str | None) -> tuple[Any, ...]:
    """:func:`call_row` of ``PricedCall(call, trace_id, span_id, customer, agent,
    cost_status, price, reason)``, without the record: the pipeline's ledger-only path
    makes the row this way when no plugin observes records (a record nobody reads:
    ~0.5 µs a call). A row builder that has this form says so in its ``parts``
    attribute (``parts(call, trace_id, ...)``, ``null`` bound)."""
    usage = call.usage
    cost_usd: Any
    price_source: Any
    if price is None:
        cost_usd = pico = price_source = null
        inexact = 0
    else:
        cost_usd, pico, inexact = _money(price.amount)
        price_source = price.price_source
        if price_source is None:
            price_source = null
    response_model = call.response_model
    if usage is None:
        tokens, richness = (_NO_USAGE if null is None else (null,) * 6), 0
    else:
        tokens, reported = _usage_columns(usage, null)
        # AICall.richness(), from the fields already read (the tests hold the two equal)
        richness = ((0 if usage.estimated else 1000) + reported * 10
                    + (1 if response_model else 0))
    request_model, response_id = call.request_model, call.response_id
    error_type, tier = call.error_type, call.service_tier
    model = response_model or request_model
    span = "%016x" % span_id  # noqa: UP031 (a third cheaper than an f-string)
    start = call.start_time_ns
    return (
        "%032x" % trace_id,  # noqa: UP031
        span, f"resp:{response_id}" if response_id else f"span:{span}",
        richness, null if customer is None else customer, null if agent is None else agent,
        call.provider, call.operation,
        null if request_model is None else request_model,
        null if response_model is None else response_model,
        null if model is None else model,
        call.captured_by, null if response_id is None else response_id,
        int(call.streaming), call.status._value_, null if error_type is None else error_type,
        *tokens, cost_status._value_, null if reason is None else reason,
        cost_usd, pico, inexact, price_source, null if tier is None else tier,
        start / 1e9, (call.end_time_ns - start) / 1e6,
    )


call_row.parts = functools.partial(call_row_parts, None)  # type: ignore[attr-defined]


def signal_row(rec: SignalRecord) -> tuple[Any, ...]:
    """The ``signals`` row of one signal, in :data:`SIGNAL_COLUMNS` order."""
    return (
        "%032x" % rec.trace_id, "%016x" % rec.span_id, rec.event_name,  # noqa: UP031
        rec.external_customer_id, rec.external_agent_id, int(rec.enable_cost_tracing),
        int(rec.cost_tracing_rejected), rec.rejection_reason, rec.idempotency_key,
        rec.data_json, rec.timestamp_ns / 1e9,
    )


# -- report values ----------------------------------------------------------------------

def _usd(amount: Decimal | None) -> str:
    """Report money: the shortest plain decimal string (no exponent), ``"0"`` for nothing."""
    return format(amount.normalize(), "f") if amount else "0"


def pico_usd(value: int | None) -> str:
    """:func:`_usd` of a sum of pico-dollars, without going through :class:`Decimal`."""
    if not value:
        return "0"
    if value < 0:
        return _usd(Decimal(value) / PICO)
    whole, fraction = divmod(value, _TEN12)
    if not fraction:
        return str(whole)
    return f"{whole}.{fraction:012d}".rstrip("0")


class SQLLedger(abc.ABC):
    """A ledger in a SQL database: writing, and the reports the CLI prints.

    Subclasses set :attr:`dialect` and implement :attr:`url`, :meth:`_query`,
    :meth:`_rows`, :meth:`_write_rows` and :meth:`close`. Safe to use from several
    threads.
    """

    dialect: Dialect

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The ledger's URL, without credentials."""

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of one query as dicts (``?`` markers already in the dialect's spelling)."""

    @abc.abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Rows of one query as tuples (``?`` markers already in the dialect's spelling)."""

    @abc.abstractmethod
    def _write_rows(self, calls: list[Any], signals: list[tuple[Any, ...]]) -> None:
        """Run the dialect's call and signal upserts for these rows in one transaction:
        ``calls`` flat (:meth:`write_rows` with ``flat_calls``), ``signals`` one tuple a
        row."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection(s); a later call may open new ones."""

    def _prepare_reports(self) -> None:
        """Bring the report summaries up to date, if the backend needs to (SQLite)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- writing ------------------------------------------------------------------------

    def write(self, calls: Sequence[PricedCall], signals: Sequence[SignalRecord]) -> None:
        """Insert calls and signals in one transaction (duplicates keep the richest row)."""
        if not calls and not signals:
            return
        call_row_, signal_row_ = self.row_builders()
        self._write_rows(list(chain.from_iterable(map(call_row_, calls))),
                         list(map(signal_row_, signals)))

    def row_builders(self) -> tuple[Callable[[PricedCall], tuple[Any, ...]],
                                    Callable[[SignalRecord], tuple[Any, ...]]]:
        """The functions turning a record into the row :meth:`write_rows` takes.

        The pipeline builds each row as soon as it has priced the call and keeps only the
        row (plain strings and numbers) until the batch is written: the records behind it
        are freed at once rather than surviving into the garbage collector's oldest
        generation, whose full collections then walk every object of the process.
        """
        return call_row, signal_row

    def write_rows(self, calls: list[Any], signals: list[tuple[Any, ...]], *,
                   flat_calls: bool = False) -> None:
        """Insert rows made by :meth:`row_builders` in one transaction (what :meth:`write`
        does with the records).

        ``calls`` is a list of call rows, or with ``flat_calls`` their values one row
        after another in one list (:data:`CALL_COLUMNS` values a row): how the pipeline
        buffers them, one object per batch. A tuple per row is a container the garbage
        collector counts until the batch is written and freed; thousands of them at a
        time made it collect its young generation every ~500 calls on a busy process.
        """
        if not flat_calls:
            calls = list(chain.from_iterable(calls))
        if calls or signals:
            self._write_rows(calls, signals)

    # -- reading ------------------------------------------------------------------------

    def calls(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """Raw call rows, optionally of one trace (hex id), oldest first.

        ``cost_usd`` is the exact decimal string (``None`` when not priced).
        """
        where, params = ("WHERE trace_id = ?", [trace_id]) if trace_id else ("", [])
        sql = self.dialect.sql(f"SELECT * FROM ai_calls {where} ORDER BY started_at, id")
        rows = self._query(sql, params)
        for row in rows:
            if isinstance(row["cost_usd"], Decimal):
                row["cost_usd"] = _money_text(row["cost_usd"])
        return rows

    def signals(
        self,
        *,
        customer: str | None = None,
        agent: str | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Each signal with the cost attributed to it, oldest first.

        ``cost_usd`` is a decimal string; it is non-zero only on a trace's cost-tracing
        signal. ``cost_tracing`` is ``attributed`` (the trace's cost signal), ``rejected``
        (a second cost signal in the trace) or ``none``.
        """
        params = [v for v in (customer, agent, since) if v is not None]
        dialect = self.dialect
        self._prepare_reports()
        sql = self._signals_query(_SIGNALS, customer, agent, since)
        cost_text = dialect.cost_text
        loads = json.loads
        out: list[dict[str, Any]] = []
        append = out.append
        for (event, customer_id, agent_id, trace, enabled, attributed, reason, cost, calls,
             input_tokens, output_tokens, unpriced, unknown, key, data,
             created) in self._rows(sql, params):
            if attributed:
                status = "attributed"
            elif enabled:
                status = "rejected"
                reason = reason or "second_cost_signal_in_trace"
            else:
                status = "none"
            append({
                "event_name": event,
                "external_customer_id": customer_id,
                "external_agent_id": agent_id,
                "trace_id": trace,
                "enable_cost_tracing": enabled != 0,
                "cost_tracing": status,
                "rejection_reason": reason or None,
                "cost_usd": cost_text(cost) if attributed else "0",
                "ai_calls": calls,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "unpriced_calls": unpriced,
                "usage_unknown_calls": unknown,
                "idempotency_key": key,
                "data": loads(data) if data else None,
                "created_at": created,
            })
        return out

    def _signals_query(self, select: str, customer: str | None, agent: str | None,
                       since: float | None) -> str:
        """The signals report with this ``SELECT`` list (over ``s``, the signal, and ``t``,
        its totals); its parameters are the filters given, in this order."""
        filters = [column for column, value in (("s.external_customer_id = ?", customer),
                                                ("s.external_agent_id = ?", agent),
                                                ("s.created_at >= ?", since))
                   if value is not None]
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        dialect = self.dialect
        return dialect.sql(SIGNALS_FROM.format(
            materialized="MATERIALIZED " if dialect.materialize else "", select=select,
            index_hint=dialect.signals_index_hint, where=where))

    def costs(self, by: str) -> list[dict[str, Any]]:
        """Totals grouped ``by`` signal, customer, agent, model or provider.

        Every call lands in exactly one row. Priced calls of traces with a cost-tracing
        signal go to their group; the rest get rows of their own, never hidden:
        ``(unattributed)`` (priced, but the trace has no cost-tracing signal),
        ``(unpriced)``, ``(usage unknown)`` and ``(failed, no charge)``. Ordered: the
        groups, then those rows; each by cost (highest first), then name.
        """
        if by in _SIGNAL_GROUPS:
            kind = _KIND.format(bucket="c.bucket")
            sql = _COSTS_BY_SIGNAL.format(kind=kind, column=_SIGNAL_GROUPS[by])
        elif by in _CALL_GROUPS:
            kind = _KIND.format(bucket=_bucket("c"))
            sql = _COSTS_BY_CALL.format(kind=kind, column=_CALL_GROUPS[by],
                                        cost=self.dialect.cost_column)
        else:
            raise ValueError(f"costs(by=...) must be signal, customer, agent, model or provider, "
                             f"not {by!r}")
        self._prepare_reports()
        cost_total = self.dialect.cost_total
        totals = []
        for kind_, grp, calls, input_tokens, output_tokens, cache_read, reasoning, cost, \
                costed, traces in self._rows(sql):
            special = kind_ != 0
            totals.append((
                special, _SPECIAL_NAMES[kind_] if special else ("(none)" if grp is None else grp),
                _SPECIAL_KINDS[kind_] if special else by, int(calls), int(traces),
                int(input_tokens), int(output_tokens), int(cache_read), int(reasoning),
                cost_total(cost) if costed else None))
        totals.sort(key=lambda t: (t[0], t[9] is None, -(t[9] or 0), t[1]))
        return [{
            "group": name,
            "kind": kind_name,
            "ai_calls": calls,
            "traces": traces,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_tokens": cache_read,
            "reasoning_tokens": reasoning,
            "cost_usd": _usd(total),
        } for _, name, kind_name, calls, traces, input_tokens, output_tokens, cache_read,
            reasoning, total in totals]

    def outcome_counts(self, by: str = "signal") -> dict[str, int]:
        """How many attributed cost-tracing signals each group has (for cost per outcome)."""
        column = _SIGNAL_GROUPS.get(by)
        if column is None:
            return {}
        self._prepare_reports()
        sql = f"SELECT {column}, COUNT(*) FROM trace_signals GROUP BY 1"
        return {g: int(n) for g, n in self._rows(sql)}
