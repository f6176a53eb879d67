"""The ledger's reports recomputed the straightforward way, from the raw rows, in Python.

This is the meaning of every report number (as schema version 1 computed them at query
time, by trace id, from ``ai_calls`` and ``signals``), written without SQL and without the
summary tables, so that the fast reports can be checked against it on random ledgers.
Also: random records (duplicates of one provider response, late and early cost signals,
every cost status, prices finer than a pico-dollar) and writing them in random batches.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from paid_hooks import AICall, CallStatus, CostStatus, Price, PricedCall, SignalRecord, Usage
from paid_hooks.ledger import SQLLedger

PICO = Decimal(10) ** 12
SPECIAL = {"unpriced": "(unpriced)", "usage_unknown": "(usage unknown)",
           "no_charge": "(failed, no charge)"}
SPECIAL_KINDS = {"(unpriced)": "unpriced", "(usage unknown)": "usage_unknown",
                 "(failed, no charge)": "no_charge", "(unattributed)": "unattributed"}
GROUPS = ("signal", "customer", "agent", "model", "provider")


def usd(amount: Decimal | None) -> str:
    return format(amount.normalize(), "f") if amount else "0"


def raw_signals(ledger: SQLLedger) -> list[dict[str, Any]]:
    return ledger._query("SELECT * FROM signals ORDER BY created_at, id")


def cost_signals(signals: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each trace's cost-tracing signal: its earliest accepted enable_cost_tracing one."""
    best: dict[str, dict[str, Any]] = {}
    for s in signals:
        if s["enable_cost_tracing"] == 1 and s["cost_tracing_rejected"] == 0:
            known = best.get(s["trace_id"])
            if known is None or (s["created_at"], s["id"]) < (known["created_at"], known["id"]):
                best[s["trace_id"]] = s
    return best


def _cost(call: dict[str, Any], exact: bool) -> Decimal | None:
    """A call's cost as the backend adds it: decimal (PostgreSQL) or pico-dollars (SQLite)."""
    if exact:
        return None if call["cost_usd"] is None else Decimal(call["cost_usd"])
    return None if call["cost_pusd"] is None else Decimal(call["cost_pusd"]) / PICO


def _add(values: list[Decimal | None]) -> Decimal | None:
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) if present else None


def signals_report(ledger: SQLLedger, exact: bool) -> list[dict[str, Any]]:
    calls, signals = ledger.calls(), raw_signals(ledger)
    chosen = cost_signals(signals)
    out = []
    for s in signals:
        attributed = chosen.get(s["trace_id"], {}).get("id") == s["id"]
        mine = [c for c in calls if c["trace_id"] == s["trace_id"]] if attributed else []
        status = ("attributed" if attributed else
                  "rejected" if s["enable_cost_tracing"] else "none")
        out.append({
            "event_name": s["event_name"],
            "external_customer_id": s["external_customer_id"],
            "external_agent_id": s["external_agent_id"],
            "trace_id": s["trace_id"],
            "enable_cost_tracing": bool(s["enable_cost_tracing"]),
            "cost_tracing": status,
            "rejection_reason": s["rejection_reason"] or (
                "second_cost_signal_in_trace" if status == "rejected" else None),
            "cost_usd": usd(_add([_cost(c, exact) for c in mine])) if attributed else "0",
            "ai_calls": len(mine),
            "input_tokens": sum(c["input_tokens"] or 0 for c in mine),
            "output_tokens": sum(c["output_tokens"] or 0 for c in mine),
            "unpriced_calls": sum(c["cost_status"] == "unpriced" for c in mine),
            "usage_unknown_calls": sum(c["cost_status"] == "usage_unknown" for c in mine),
            "idempotency_key": s["idempotency_key"],
            "data": json.loads(s["data_json"]) if s["data_json"] else None,
            "created_at": s["created_at"],
        })
    return out


_SIGNAL_FIELDS = {"signal": "event_name", "customer": "external_customer_id",
                  "agent": "external_agent_id"}


def costs_report(ledger: SQLLedger, by: str, exact: bool) -> list[dict[str, Any]]:
    calls, chosen = ledger.calls(), cost_signals(raw_signals(ledger))
    groups: dict[tuple[bool, str], list[dict[str, Any]]] = {}
    for c in calls:
        cs = chosen.get(c["trace_id"])
        special = SPECIAL.get(c["cost_status"]) or ("(unattributed)" if cs is None else None)
        if special is not None:
            key = (True, special)
        else:
            assert cs is not None
            value = cs[_SIGNAL_FIELDS[by]] if by in _SIGNAL_FIELDS else c[by]
            key = (False, "(none)" if value is None else value)
        groups.setdefault(key, []).append(c)
    rows = []
    for (special_, name), members in groups.items():
        total = _add([_cost(c, exact) for c in members])
        rows.append((special_, total, name, {
            "group": name,
            "kind": SPECIAL_KINDS[name] if special_ else by,
            "ai_calls": len(members),
            "traces": len({c["trace_id"] for c in members}),
            "input_tokens": sum(c["input_tokens"] or 0 for c in members),
            "output_tokens": sum(c["output_tokens"] or 0 for c in members),
            "cache_read_tokens": sum(c["cache_read_tokens"] or 0 for c in members),
            "reasoning_tokens": sum(c["reasoning_tokens"] or 0 for c in members),
            "cost_usd": usd(total),
        }))
    rows.sort(key=lambda r: (r[0], r[1] is None, -(r[1] or 0), r[2]))
    return [r[3] for r in rows]


def outcome_counts(ledger: SQLLedger, by: str) -> dict[str, int]:
    if by not in _SIGNAL_FIELDS:
        return {}
    counts: dict[str, int] = {}
    for s in cost_signals(raw_signals(ledger)).values():
        counts[s[_SIGNAL_FIELDS[by]]] = counts.get(s[_SIGNAL_FIELDS[by]], 0) + 1
    return counts


def assert_reports_match(ledger: SQLLedger, exact: bool) -> None:
    """Every report of ``ledger`` equals its recomputation from the raw rows."""
    assert ledger.signals() == signals_report(ledger, exact)
    for by in GROUPS:
        assert ledger.costs(by) == costs_report(ledger, by, exact), by
        assert ledger.outcome_counts(by) == outcome_counts(ledger, by), by
    fast = getattr(ledger, "signals_json", None)
    if fast is not None:
        pieces = fast()
        assert pieces is not None
        assert "".join(pieces) == json.dumps(ledger.signals(), indent=2)


# -- random records -------------------------------------------------------------------

_CUSTOMERS = ("acme", "globex", "initech", "Überwald GmbH", "ümlaut\x7f", None)
_AMOUNTS = ("0.001", "0.0025", "1E+1", "7.5E-8", "0.000000000000400", "0", "12.5",
            "0.123456789012", "0.1234567890123", "3")


def random_usage(rng: random.Random) -> Usage | None:
    roll = rng.random()
    if roll < 0.1:
        return None
    counts: dict[str, Any] = {"input_tokens": rng.randrange(0, 5000),
                              "output_tokens": rng.randrange(0, 900)}
    for name in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens"):
        if rng.random() < 0.4:
            counts[name] = rng.randrange(0, 300)
    if rng.random() < 0.1:
        counts["units"] = {"web_searches": rng.randrange(1, 4)}
    return Usage(**counts, estimated=rng.random() < 0.1)


def random_call(rng: random.Random, traces: int, span: int) -> PricedCall:
    usage = random_usage(rng)
    status = rng.choice([CostStatus.PRICED] * 6 + [CostStatus.UNPRICED, CostStatus.NO_CHARGE]
                        + [CostStatus.USAGE_UNKNOWN])
    price = Price(Decimal(rng.choice(_AMOUNTS))) if status is CostStatus.PRICED else None
    model = rng.choice(["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", None])
    response_model = rng.choice([model, None, ""])
    start = rng.randrange(1, 50) * 1_000_000
    ai = AICall(rng.choice(["openai", "anthropic"]), "chat", model, response_model, usage,
                rng.choice(["openai", "httpx", "langchain"]), start, start + 500,
                status=CallStatus.ERROR if status is CostStatus.NO_CHARGE else CallStatus.OK,
                response_id=rng.choice([f"resp-{rng.randrange(12)}", None, ""]),
                streaming=rng.random() < 0.3, service_tier=rng.choice([None, "default"]))
    return PricedCall(ai, rng.randrange(1, traces + 1), span, rng.choice(_CUSTOMERS),
                      rng.choice(["sdr", "support", None]), status, price,
                      None if price else "unknown_model")


def random_signal(rng: random.Random, traces: int, key: int) -> SignalRecord:
    enabled = rng.random() < 0.7
    rejected = enabled and rng.random() < 0.2
    data = rng.choice([None, None, json.dumps({"lead": rng.randrange(9), "note": "é\n"}), ""])
    return SignalRecord(
        rng.choice(["meeting_booked", "email_sent", "deal ✓"]),
        rng.choice([c for c in _CUSTOMERS if c is not None]), rng.choice(["sdr", "support"]),
        rng.randrange(1, traces + 1), f"sig-{rng.randrange(key + 1)}", enabled,
        rng.randrange(1, 6) * 1_000_000_000, data_json=data, cost_tracing_rejected=rejected,
        rejection_reason="second_cost_signal_in_trace" if rejected and rng.random() < 0.5 else None,
        span_id=key)


def write_randomly(ledger: SQLLedger, rng: random.Random, calls: int = 60, signals: int = 20,
                   traces: int = 8) -> None:
    """Random records in random batches, some repeated (exporter retries, several layers)."""
    records: list[PricedCall | SignalRecord] = [random_call(rng, traces, n) for n in range(calls)]
    records += [random_signal(rng, traces, n) for n in range(signals)]
    rng.shuffle(records)
    records += rng.sample(records, len(records) // 5)
    while records:
        size = rng.randrange(1, 25)
        batch, records = records[:size], records[size:]
        ledger.write([r for r in batch if isinstance(r, PricedCall)],
                     [r for r in batch if isinstance(r, SignalRecord)])
