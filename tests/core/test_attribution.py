"""Cost rules 1-3 and 5: one cost signal per trace, attribution by trace id, no silent zero."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

import paid_hooks
from paid_hooks import CostTracingError, paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage, temporary_ledger

from .conftest import MESSAGES, MODEL, expected_cost


def test_calls_before_and_after_the_signal_are_attributed(paid_ledger, fake_provider, client):
    u1, u2 = FakeUsage(1200, 300, cache_read_tokens=200), FakeUsage(800, 50)
    fake_provider.queue(FakeReply(usage=u1), FakeReply(usage=u2))
    with paid_tracing("acme", external_agent_id="sdr"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        signal("meeting_booked", enable_cost_tracing=True)
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    [row] = paid_ledger.signals()
    assert row["cost_tracing"] == "attributed"
    assert row["ai_calls"] == 2
    assert row["input_tokens"] == 2000 and row["output_tokens"] == 350
    assert Decimal(row["cost_usd"]) == expected_cost(u1) + expected_cost(u2)
    calls = paid_ledger.calls()
    assert {c["cache_read_tokens"] for c in calls} == {200, 0}
    assert all(c["external_customer_id"] == "acme" for c in calls)


def test_second_cost_signal_is_recorded_plain_and_warned_once(paid_ledger, fake_provider, client,
                                                              caplog):
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage))
    with caplog.at_level(logging.WARNING, logger="paid_hooks"), \
            paid_tracing("acme", external_agent_id="sdr"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        first = signal("meeting_booked", enable_cost_tracing=True)
        second = signal("email_sent", enable_cost_tracing=True)
        third = signal("email_sent", enable_cost_tracing=True)
    assert not first.cost_tracing_rejected
    assert second.cost_tracing_rejected and third.cost_tracing_rejected
    warnings = [r for r in caplog.records if "second cost-tracing signal" in r.getMessage()]
    assert len(warnings) == 1

    rows = {r["idempotency_key"]: r for r in paid_ledger.signals()}
    assert rows[first.idempotency_key]["cost_usd"] == str(expected_cost(usage))
    for rejected in (second, third):
        assert rows[rejected.idempotency_key]["cost_tracing"] == "rejected"
        assert rows[rejected.idempotency_key]["cost_usd"] == "0"
        assert rows[rejected.idempotency_key]["rejection_reason"] == "second_cost_signal_in_trace"
    total = sum(Decimal(r["cost_usd"]) for r in rows.values())
    assert total == expected_cost(usage), "the trace's cost is counted exactly once"


def test_strict_mode_raises_on_second_cost_signal(tmp_path, fake_provider, client):
    with temporary_ledger(tmp_path, strict=True) as ledger:
        with paid_tracing("acme", external_agent_id="sdr"):
            signal("meeting_booked", enable_cost_tracing=True)
            with pytest.raises(CostTracingError, match="already has a cost-tracing signal"):
                signal("email_sent", enable_cost_tracing=True)
        [row] = ledger.signals()
        assert row["event_name"] == "meeting_booked"


def test_trace_without_cost_signal_is_reported_unattributed(paid_ledger, fake_provider, client):
    usage = FakeUsage(500, 20)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="sdr"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        signal("email_opened")  # a plain signal carries no cost
    [sig] = paid_ledger.signals()
    assert sig["cost_tracing"] == "none" and sig["cost_usd"] == "0"
    rows = paid_ledger.costs("customer")
    assert [(r["group"], r["kind"]) for r in rows] == [("(unattributed)", "unattributed")]
    assert Decimal(rows[0]["cost_usd"]) == expected_cost(usage)


def test_unpriced_model_is_visible_not_zero(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10), model="acme-private-model-7"))
    with paid_tracing("acme", external_agent_id="sdr"):
        client.chat.completions.create(model="acme-private-model-7", messages=MESSAGES)
        signal("done", enable_cost_tracing=True)
    [call] = paid_ledger.calls()
    assert call["cost_status"] == "unpriced"
    assert call["cost_reason"] == "unknown_model"
    assert call["cost_usd"] is None
    assert call["input_tokens"] == 100
    [sig] = paid_ledger.signals()
    assert sig["unpriced_calls"] == 1
    rows = paid_ledger.costs("signal")
    assert [(r["group"], r["ai_calls"], r["input_tokens"]) for r in rows] == [
        ("(unpriced)", 1, 100)]


def test_missing_usage_is_usage_unknown_not_zero(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(omit_usage=True))
    with paid_tracing("acme", external_agent_id="sdr"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        signal("done", enable_cost_tracing=True)
    [call] = paid_ledger.calls()
    assert call["cost_status"] == "usage_unknown"
    assert call["cost_reason"] == "not_reported"
    [sig] = paid_ledger.signals()
    assert sig["usage_unknown_calls"] == 1
    assert [r["group"] for r in paid_ledger.costs("customer")] == ["(usage unknown)"]


def test_failed_call_costs_nothing_and_the_error_reaches_the_caller(paid_ledger, fake_provider,
                                                                   client):
    import openai

    fake_provider.queue(FakeReply(status=429, error_message="slow down"))
    with paid_tracing("acme", external_agent_id="sdr"), \
            pytest.raises(openai.RateLimitError, match="slow down"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    [call] = paid_ledger.calls()
    assert call["cost_status"] == "no_charge"
    assert call["call_status"] == "error"
    assert call["error_type"] == "RateLimitError"


async def test_200_concurrent_traces_each_attributed_to_their_own_signal(paid_ledger,
                                                                        fake_provider, aclient):
    def responder(provider, body):
        n = int(body["messages"][0]["content"])
        return FakeReply(usage=FakeUsage(1000 + n, 10 + n))

    fake_provider.responder = responder

    async def handle(n: int) -> str:
        async with paid_tracing(f"customer-{n}", external_agent_id="sdr"):
            await asyncio.sleep(0)
            await aclient.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": str(n)}])
            signal("email_sent", enable_cost_tracing=True, data={"n": n})
            return paid_hooks.current_scope().external_customer_id

    results = await asyncio.gather(*(handle(n) for n in range(200)))
    assert results == [f"customer-{n}" for n in range(200)]
    assert paid_hooks.current_scope() is None

    signals = paid_ledger.signals()
    assert len(signals) == 200
    for row in signals:
        n = row["data"]["n"]
        assert row["external_customer_id"] == f"customer-{n}"
        assert row["ai_calls"] == 1
        assert row["input_tokens"] == 1000 + n
        assert Decimal(row["cost_usd"]) == expected_cost(FakeUsage(1000 + n, 10 + n))


def test_attribution_holds_when_rows_arrive_late_and_out_of_order(tmp_path):
    """Rule 3: attribution is computed from the ledger by trace id, not at write time."""
    from paid_hooks import AICall, CostStatus, Price, PricedCall, SignalRecord, Usage
    from paid_hooks.ledger import SQLiteLedger

    ledger = SQLiteLedger(tmp_path / "l.db")
    trace = 0xABC
    sig = SignalRecord("meeting_booked", "acme", "sdr", trace, "key-1", True, 2_000, span_id=9)

    def call(n: int, amount: str) -> PricedCall:
        ai = AICall("openai", "chat", MODEL, MODEL, Usage(input_tokens=n, output_tokens=1),
                    "openai", 1_000, 1_500, response_id=f"r{n}")
        return PricedCall(ai, trace, n, "acme", "sdr", CostStatus.PRICED, Price(Decimal(amount)))

    ledger.write([call(1, "0.001")], [])           # a call before its signal exists
    assert ledger.signals() == []
    ledger.write([], [sig])                         # the signal, in another batch
    ledger.write([call(2, "0.0025")], [])           # a late call, after the signal
    [row] = ledger.signals()
    assert row["ai_calls"] == 2 and row["cost_usd"] == "0.0035"


def test_duplicate_records_of_one_response_keep_the_richest(tmp_path):
    from paid_hooks import AICall, CostStatus, Price, PricedCall, Usage
    from paid_hooks.ledger import SQLiteLedger

    ledger = SQLiteLedger(tmp_path / "l.db")

    def rec(usage: Usage, by: str, span: int) -> PricedCall:
        ai = AICall("openai", "chat", MODEL, MODEL, usage, by, 1, 2, response_id="chatcmpl-1")
        return PricedCall(ai, 7, span, "acme", "sdr", CostStatus.PRICED, Price(Decimal("0.01")))

    rich = Usage(input_tokens=100, output_tokens=5, cache_read_tokens=40, reasoning_tokens=0)
    ledger.write([rec(Usage(input_tokens=100, output_tokens=5), "langchain", 1)], [])
    ledger.write([rec(rich, "openai", 2)], [])
    ledger.write([rec(Usage(input_tokens=100, output_tokens=5), "httpx", 3)], [])
    [row] = ledger.calls()
    assert row["captured_by"] == "openai" and row["cache_read_tokens"] == 40
