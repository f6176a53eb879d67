"""What every SQL ledger shares: the schema, the row builders, the reports.

A backend (:class:`~paid_hooks.ledger.sqlite.SQLiteLedger`,
:class:`~paid_hooks.ledger.postgres.PostgresLedger`) subclasses :class:`SQLLedger` and
supplies a :class:`Dialect` plus three primitives: run a query, write rows in one
transaction, close. The SQL text and the shaping of report rows live here once, so the
backends return the same row dicts for the same records.

Money: ``cost_usd`` is the exact decimal amount (text in SQLite, ``NUMERIC`` in
PostgreSQL) and ``cost_pusd`` the same amount as an integer count of pico-dollars
(1e-12 USD). Reports add ``cost_pusd`` in SQLite (it has no exact decimal type) and
``cost_usd`` in PostgreSQL. Every price genai-prices knows is a whole number of
pico-dollars, so both give the same totals; an amount that is not (``cost_inexact``) is
rounded in ``cost_pusd`` only.

Attribution is computed at query time, by trace id: a trace's cost-tracing signal is its
earliest ``enable_cost_tracing`` signal that was not rejected, so it holds however late or
in whatever order the rows of one trace arrive.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from paid_hooks.model import PricedCall, SignalRecord

__all__ = ["PICO", "SCHEMA_VERSION", "Dialect", "LedgerError", "SQLLedger", "call_row",
           "signal_row"]

PICO = Decimal(10) ** 12
SCHEMA_VERSION = 1


class LedgerError(RuntimeError):
    """The ledger could not be reached or written (the message never holds credentials)."""


_SCHEMA = """
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
CREATE INDEX IF NOT EXISTS ai_calls_trace ON ai_calls (trace_id);
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
"""

_SCHEMA_VERSION_ROW = (
    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING")

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
# Computed once, then looked up by trace id ({materialized}: left to the planner, SQLite
# inlines it and re-runs the NOT EXISTS for every call row, 40 % slower over 1M calls).
_COST_SIGNALS = """
cost_signal AS {materialized}(
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

_SIGNALS = """
WITH {cost_signals},
trace_costs AS (
    SELECT c.trace_id, COUNT(*) AS calls, {cost_sum} AS cost_total,
           SUM(CASE WHEN c.cost_status = 'unpriced' THEN 1 ELSE 0 END) AS unpriced,
           SUM(CASE WHEN c.cost_status = 'usage_unknown' THEN 1 ELSE 0 END) AS unknown_usage,
           SUM(COALESCE(c.input_tokens, 0)) AS input_tokens,
           SUM(COALESCE(c.output_tokens, 0)) AS output_tokens
    FROM ai_calls c JOIN cost_signal cs ON cs.trace_id = c.trace_id
    GROUP BY c.trace_id
)
SELECT s.*, cs.id AS cost_signal_id, tc.calls, tc.cost_total, tc.unpriced, tc.unknown_usage,
       tc.input_tokens, tc.output_tokens
FROM signals s
LEFT JOIN cost_signal cs ON cs.id = s.id
LEFT JOIN trace_costs tc ON cs.id IS NOT NULL AND tc.trace_id = s.trace_id
{where}
ORDER BY s.created_at, s.id
"""

_COSTS = """
WITH {cost_signals},
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
       {cost_sum} AS cost_total,
       COUNT(DISTINCT trace_id) AS traces
FROM classified
GROUP BY 1, 2
"""

_GROUPS = {
    "signal": "cs.event_name",
    "customer": "COALESCE(cs.external_customer_id, c.external_customer_id)",
    "agent": "COALESCE(cs.external_agent_id, c.external_agent_id)",
    "model": "c.model",
    "provider": "c.provider",
}

_OUTCOME_COLUMNS = {"signal": "event_name", "customer": "external_customer_id",
                    "agent": "external_agent_id"}

_SPECIAL_KINDS = {
    "(unpriced)": "unpriced",
    "(usage unknown)": "usage_unknown",
    "(failed, no charge)": "no_charge",
    "(unattributed)": "unattributed",
}


@dataclass(frozen=True)
class Dialect:
    """How one database spells the shared SQL.

    ``placeholder`` replaces each ``?`` parameter marker; ``id_column``, ``count``,
    ``money`` and ``real`` are column types; ``cost_sum`` adds a group's exact cost and
    ``cost_total`` turns its value into a :class:`~decimal.Decimal` (``None`` for NULL).
    """

    placeholder: str
    id_column: str
    count: str
    money: str
    real: str
    cost_sum: str
    cost_total: Callable[[Any], Decimal | None]
    materialize: bool = True
    """Whether ``WITH ... AS MATERIALIZED`` is understood (SQLite >= 3.35, PostgreSQL >= 12)."""

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def schema(self) -> str:
        return _SCHEMA.format(id=self.id_column, count=self.count, money=self.money,
                              real=self.real)

    def schema_version_row(self) -> tuple[str, tuple[str]]:
        return self.sql(_SCHEMA_VERSION_ROW), (str(SCHEMA_VERSION),)

    def insert_call(self) -> str:
        return self.sql(_INSERT_CALL)

    def insert_signal(self) -> str:
        return self.sql(_INSERT_SIGNAL)

    def cost_signals(self) -> str:
        """The ``cost_signal`` common table expression."""
        return _COST_SIGNALS.format(materialized="MATERIALIZED " if self.materialize else "")


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


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


def call_row(rec: PricedCall) -> tuple[Any, ...]:
    """The ``ai_calls`` row of one priced call, in ``_INSERT_CALL`` column order."""
    call, usage = rec.call, rec.call.usage
    dedupe = f"resp:{call.response_id}" if call.response_id else f"span:{rec.span_id:016x}"
    pico: int | None = None
    inexact = False
    cost_usd: str | None = None
    if rec.price is not None:
        pico, inexact = _to_pico(rec.price.amount)
        cost_usd = _money_text(rec.price.amount)
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
    """The ``signals`` row of one signal, in ``_INSERT_SIGNAL`` column order."""
    return (
        _hex(rec.trace_id, 32), _hex(rec.span_id, 16), rec.event_name,
        rec.external_customer_id, rec.external_agent_id, int(rec.enable_cost_tracing),
        int(rec.cost_tracing_rejected), rec.rejection_reason, rec.idempotency_key,
        rec.data_json, rec.timestamp_ns / 1e9,
    )


def _usd(amount: Decimal | None) -> str:
    """Report money: the shortest plain decimal string (no exponent), ``"0"`` for nothing."""
    return format(amount.normalize(), "f") if amount else "0"


class SQLLedger(abc.ABC):
    """A ledger in a SQL database: writing, and the reports the CLI prints.

    Subclasses set :attr:`dialect` and implement :attr:`url`, :meth:`_query`,
    :meth:`_write_rows` and :meth:`close`. Safe to use from several threads.
    """

    dialect: Dialect

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The ledger's URL, without credentials."""

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of one query (``?`` markers already in the dialect's spelling)."""

    @abc.abstractmethod
    def _write_rows(self, calls: list[tuple[Any, ...]], signals: list[tuple[Any, ...]]) -> None:
        """Run the dialect's call and signal upserts for these rows in one transaction."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection(s); a later call may open new ones."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- writing ------------------------------------------------------------------------

    def write(self, calls: Sequence[PricedCall], signals: Sequence[SignalRecord]) -> None:
        """Insert calls and signals in one transaction (duplicates keep the richest row)."""
        if not calls and not signals:
            return
        self._write_rows([call_row(c) for c in calls], [signal_row(s) for s in signals])

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
        filters: list[str] = []
        params: list[Any] = []
        for column, value in (("s.external_customer_id = ?", customer),
                              ("s.external_agent_id = ?", agent),
                              ("s.created_at >= ?", since)):
            if value is not None:
                filters.append(column)
                params.append(value)
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        sql = _SIGNALS.format(cost_signals=self.dialect.cost_signals(),
                              cost_sum=self.dialect.cost_sum, where=where)
        return [self._signal_report(r) for r in self._query(self.dialect.sql(sql), params)]

    def _signal_report(self, r: dict[str, Any]) -> dict[str, Any]:
        attributed = r["cost_signal_id"] is not None
        if attributed:
            status = "attributed"
        elif r["enable_cost_tracing"]:
            status = "rejected"
        else:
            status = "none"

        def count(key: str) -> int:
            return int(r[key] or 0) if attributed else 0

        return {
            "event_name": r["event_name"],
            "external_customer_id": r["external_customer_id"],
            "external_agent_id": r["external_agent_id"],
            "trace_id": r["trace_id"],
            "enable_cost_tracing": bool(r["enable_cost_tracing"]),
            "cost_tracing": status,
            "rejection_reason": r["rejection_reason"] or (
                "second_cost_signal_in_trace" if status == "rejected" else None),
            "cost_usd": _usd(self.dialect.cost_total(r["cost_total"])) if attributed else "0",
            "ai_calls": count("calls"),
            "input_tokens": count("input_tokens"),
            "output_tokens": count("output_tokens"),
            "unpriced_calls": count("unpriced"),
            "usage_unknown_calls": count("unknown_usage"),
            "idempotency_key": r["idempotency_key"],
            "data": json.loads(r["data_json"]) if r["data_json"] else None,
            "created_at": r["created_at"],
        }

    def costs(self, by: str) -> list[dict[str, Any]]:
        """Totals grouped ``by`` signal, customer, agent, model or provider.

        Every call lands in exactly one row. Priced calls of traces with a cost-tracing
        signal go to their group; the rest get rows of their own, never hidden:
        ``(unattributed)`` (priced, but the trace has no cost-tracing signal),
        ``(unpriced)``, ``(usage unknown)`` and ``(failed, no charge)``. Ordered: the
        groups, then those rows; each by cost (highest first), then name.
        """
        group_expr = _GROUPS.get(by)
        if group_expr is None:
            raise ValueError(f"costs(by=...) must be signal, customer, agent, model or provider, "
                             f"not {by!r}")
        sql = _COSTS.format(cost_signals=self.dialect.cost_signals(), group_expr=group_expr,
                            cost_sum=self.dialect.cost_sum)
        totals = [(r, self.dialect.cost_total(r["cost_total"])) for r in self._query(sql)]
        totals.sort(key=lambda rt: (bool(rt[0]["is_special"]), rt[1] is None,
                                    -(rt[1] or 0), rt[0]["grp"]))
        return [{
            "group": r["grp"],
            "kind": _SPECIAL_KINDS.get(r["grp"], "other") if r["is_special"] else by,
            "ai_calls": int(r["calls"]),
            "traces": int(r["traces"]),
            "input_tokens": int(r["input_tokens"]),
            "output_tokens": int(r["output_tokens"]),
            "cache_read_tokens": int(r["cache_read_tokens"]),
            "reasoning_tokens": int(r["reasoning_tokens"]),
            "cost_usd": _usd(total),
        } for r, total in totals]

    def outcome_counts(self, by: str = "signal") -> dict[str, int]:
        """How many attributed cost-tracing signals each group has (for cost per outcome)."""
        column = _OUTCOME_COLUMNS.get(by)
        if column is None:
            return {}
        sql = (f"WITH {self.dialect.cost_signals()} SELECT {column} AS g, COUNT(*) AS n "
               "FROM cost_signal GROUP BY 1")
        return {r["g"]: int(r["n"]) for r in self._query(sql)}

