"""The embedded SQLite ledger: one row per AI call, one per signal.

Money is stored twice: ``cost_usd`` as the exact decimal string, and ``cost_pusd`` as an
integer count of pico-dollars (1e-12 USD) so that SQL can add costs exactly. Every price
genai-prices knows (dollars per million tokens with up to six decimals) is a whole number
of pico-dollars; a cost that is not is stored rounded in ``cost_pusd`` and flagged.

Attribution is computed here, by trace id, at query time: a trace's cost-tracing signal
is its earliest ``enable_cost_tracing`` signal that was not rejected, so it holds however
late or in whatever order the rows of one trace arrive.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from paid_hooks.model import PricedCall, SignalRecord

__all__ = ["PICO", "SQLiteLedger"]

PICO = Decimal(10) ** 12
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ai_calls (
    id INTEGER PRIMARY KEY,
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
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    reasoning_tokens INTEGER,
    usage_json TEXT,
    cost_status TEXT NOT NULL,
    cost_reason TEXT,
    cost_usd TEXT,
    cost_pusd INTEGER,
    cost_inexact INTEGER NOT NULL DEFAULT 0,
    price_source TEXT,
    service_tier TEXT,
    started_at REAL NOT NULL,
    duration_ms REAL NOT NULL,
    UNIQUE (trace_id, dedupe_key)
);
CREATE INDEX IF NOT EXISTS ai_calls_trace ON ai_calls (trace_id);
CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY,
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
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_trace ON signals (trace_id);
"""

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

_INSERT_SIGNAL = """
INSERT INTO signals (
    trace_id, span_id, event_name, external_customer_id, external_agent_id,
    enable_cost_tracing, cost_tracing_rejected, rejection_reason, idempotency_key,
    data_json, created_at
) VALUES (?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT (idempotency_key) DO NOTHING
"""

# The cost-tracing signal of each trace: its earliest accepted enable_cost_tracing signal.
_COST_SIGNALS = """
cost_signal AS (
    SELECT s.* FROM signals s
    WHERE s.enable_cost_tracing = 1 AND s.cost_tracing_rejected = 0
      AND NOT EXISTS (
        SELECT 1 FROM signals e
        WHERE e.trace_id = s.trace_id AND e.enable_cost_tracing = 1
          AND e.cost_tracing_rejected = 0
          AND (e.created_at < s.created_at OR (e.created_at = s.created_at AND e.id < s.id))
      )
)
"""


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _to_pico(amount: Decimal) -> tuple[int, bool]:
    scaled = amount * PICO
    rounded = scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(rounded), rounded != scaled


def call_row(rec: PricedCall) -> tuple[Any, ...]:
    """The ``ai_calls`` row of one priced call (shared with other SQL ledgers)."""
    call, usage = rec.call, rec.call.usage
    dedupe = f"resp:{call.response_id}" if call.response_id else f"span:{rec.span_id:016x}"
    pico: int | None = None
    inexact = False
    cost_usd: str | None = None
    if rec.price is not None:
        pico, inexact = _to_pico(rec.price.amount)
        cost_usd = str(rec.price.amount)
    return (
        _hex(rec.trace_id, 32), _hex(rec.span_id, 16), dedupe, call.richness(),
        rec.external_customer_id, rec.external_agent_id,
        call.provider, call.operation, call.request_model, call.response_model, call.model,
        call.captured_by, call.response_id, int(call.streaming), call.status.value,
        call.error_type,
        usage.input_tokens if usage else None,
        usage.output_tokens if usage else None,
        usage.cache_read_tokens if usage else None,
        usage.cache_write_tokens if usage else None,
        usage.reasoning_tokens if usage else None,
        usage.to_json() if usage else None,
        rec.cost_status.value, rec.cost_reason, cost_usd, pico, int(inexact),
        rec.price.price_source if rec.price else None, call.service_tier,
        call.start_time_ns / 1e9, call.latency_ms,
    )


def signal_row(rec: SignalRecord) -> tuple[Any, ...]:
    return (
        _hex(rec.trace_id, 32), _hex(rec.span_id, 16), rec.event_name,
        rec.external_customer_id, rec.external_agent_id, int(rec.enable_cost_tracing),
        int(rec.cost_tracing_rejected), rec.rejection_reason, rec.idempotency_key,
        rec.data_json, rec.timestamp_ns / 1e9,
    )


def _usd(pico: int | None) -> str:
    return str((Decimal(pico or 0) / PICO).normalize()) if pico else "0"


class SQLiteLedger:
    """A ledger in one SQLite file (WAL mode, created owner-read/write only)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if not os.path.exists(self.path):
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        conn.commit()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    # -- writing ------------------------------------------------------------------------

    def write(self, calls: Sequence[PricedCall], signals: Sequence[SignalRecord]) -> None:
        """Insert calls and signals in one transaction (duplicates keep the richest row)."""
        if not calls and not signals:
            return
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if calls:
                    conn.executemany(_INSERT_CALL, [call_row(c) for c in calls])
                if signals:
                    conn.executemany(_INSERT_SIGNAL, [signal_row(s) for s in signals])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- reading ------------------------------------------------------------------------

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        conn.row_factory = sqlite3.Row
        try:
            return list(conn.execute(sql, tuple(params)))
        finally:
            conn.row_factory = None

    def calls(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """Raw call rows, optionally of one trace (hex id), oldest first."""
        where, params = ("WHERE trace_id = ?", [trace_id]) if trace_id else ("", [])
        rows = self._query(f"SELECT * FROM ai_calls {where} ORDER BY started_at, id", params)
        return [dict(r) for r in rows]

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
        filters: list[str] = []
        params: list[Any] = []
        if customer is not None:
            filters.append("s.external_customer_id = ?")
            params.append(customer)
        if agent is not None:
            filters.append("s.external_agent_id = ?")
            params.append(agent)
        if since is not None:
            filters.append("s.created_at >= ?")
            params.append(since)
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        sql = f"""
        WITH {_COST_SIGNALS},
        trace_costs AS (
            SELECT c.trace_id, COUNT(*) AS calls, SUM(c.cost_pusd) AS pusd,
                   SUM(c.cost_status = 'unpriced') AS unpriced,
                   SUM(c.cost_status = 'usage_unknown') AS unknown,
                   SUM(COALESCE(c.input_tokens, 0)) AS input_tokens,
                   SUM(COALESCE(c.output_tokens, 0)) AS output_tokens
            FROM ai_calls c JOIN cost_signal cs ON cs.trace_id = c.trace_id
            GROUP BY c.trace_id
        )
        SELECT s.*, cs.id AS cost_signal_id, tc.calls, tc.pusd, tc.unpriced, tc.unknown,
               tc.input_tokens, tc.output_tokens
        FROM signals s
        LEFT JOIN cost_signal cs ON cs.id = s.id
        LEFT JOIN trace_costs tc ON cs.id IS NOT NULL AND tc.trace_id = s.trace_id
        {where}
        ORDER BY s.created_at, s.id
        """
        out = []
        for r in self._query(sql, params):
            attributed = r["cost_signal_id"] is not None
            if attributed:
                status = "attributed"
            elif r["enable_cost_tracing"]:
                status = "rejected"
            else:
                status = "none"
            out.append({
                "event_name": r["event_name"],
                "external_customer_id": r["external_customer_id"],
                "external_agent_id": r["external_agent_id"],
                "trace_id": r["trace_id"],
                "enable_cost_tracing": bool(r["enable_cost_tracing"]),
                "cost_tracing": status,
                "rejection_reason": r["rejection_reason"] or (
                    "second_cost_signal_in_trace" if status == "rejected" else None),
                "cost_usd": _usd(r["pusd"]) if attributed else "0",
                "ai_calls": int(r["calls"] or 0) if attributed else 0,
                "input_tokens": int(r["input_tokens"] or 0) if attributed else 0,
                "output_tokens": int(r["output_tokens"] or 0) if attributed else 0,
                "unpriced_calls": int(r["unpriced"] or 0) if attributed else 0,
                "usage_unknown_calls": int(r["unknown"] or 0) if attributed else 0,
                "idempotency_key": r["idempotency_key"],
                "data": json.loads(r["data_json"]) if r["data_json"] else None,
                "created_at": r["created_at"],
            })
        return out

    def costs(self, by: str) -> list[dict[str, Any]]:
        """Totals grouped ``by`` signal, customer, agent, model or provider.

        Every call lands in exactly one row. Priced calls of traces with a cost-tracing
        signal go to their group; the rest get rows of their own, never hidden:
        ``(unattributed)`` (priced, but the trace has no cost-tracing signal),
        ``(unpriced)``, ``(usage unknown)`` and ``(failed, no charge)``.
        """
        group_expr = {
            "signal": "cs.event_name",
            "customer": "COALESCE(cs.external_customer_id, c.external_customer_id)",
            "agent": "COALESCE(cs.external_agent_id, c.external_agent_id)",
            "model": "c.model",
            "provider": "c.provider",
        }.get(by)
        if group_expr is None:
            raise ValueError(f"costs(by=...) must be signal, customer, agent, model or provider, "
                             f"not {by!r}")
        sql = f"""
        WITH {_COST_SIGNALS},
        classified AS (
            SELECT c.*,
                CASE
                    WHEN c.cost_status = 'unpriced' THEN '(unpriced)'
                    WHEN c.cost_status = 'usage_unknown' THEN '(usage unknown)'
                    WHEN c.cost_status = 'no_charge' THEN '(failed, no charge)'
                    WHEN cs.id IS NULL THEN '(unattributed)'
                    ELSE NULL
                END AS special,
                {group_expr} AS grp
            FROM ai_calls c LEFT JOIN cost_signal cs ON cs.trace_id = c.trace_id
        )
        SELECT COALESCE(special, COALESCE(grp, '(none)')) AS grp, special IS NOT NULL AS is_special,
               COUNT(*) AS calls,
               SUM(COALESCE(input_tokens, 0)) AS input_tokens,
               SUM(COALESCE(output_tokens, 0)) AS output_tokens,
               SUM(COALESCE(cache_read_tokens, 0)) AS cache_read_tokens,
               SUM(COALESCE(reasoning_tokens, 0)) AS reasoning_tokens,
               SUM(cost_pusd) AS pusd,
               COUNT(DISTINCT trace_id) AS traces
        FROM classified
        GROUP BY 1, 2
        ORDER BY is_special, pusd DESC, grp
        """
        out = []
        for r in self._query(sql):
            out.append({
                "group": r["grp"],
                "kind": _special_kind(r["grp"]) if r["is_special"] else by,
                "ai_calls": int(r["calls"]),
                "traces": int(r["traces"]),
                "input_tokens": int(r["input_tokens"]),
                "output_tokens": int(r["output_tokens"]),
                "cache_read_tokens": int(r["cache_read_tokens"]),
                "reasoning_tokens": int(r["reasoning_tokens"]),
                "cost_usd": _usd(r["pusd"]),
            })
        return out

    def outcome_counts(self, by: str = "signal") -> dict[str, int]:
        """How many attributed cost-tracing signals each group has (for cost per outcome)."""
        column = {"signal": "event_name", "customer": "external_customer_id",
                  "agent": "external_agent_id"}.get(by)
        if column is None:
            return {}
        sql = (f"WITH {_COST_SIGNALS} SELECT {column} AS g, COUNT(*) AS n "
               "FROM cost_signal GROUP BY 1")
        return {r["g"]: int(r["n"]) for r in self._query(sql)}


def _special_kind(group: str) -> str:
    return {
        "(unpriced)": "unpriced",
        "(usage unknown)": "usage_unknown",
        "(failed, no charge)": "no_charge",
        "(unattributed)": "unattributed",
    }.get(group, "other")

