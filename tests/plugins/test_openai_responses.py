"""OpenAI plugin, Responses API (create, stream=True, stream(), parse) through the wrapper."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.responses import Response
from pydantic import BaseModel

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI

MODEL = "gpt-5-mini"
USAGE = FakeUsage(2000, 700, cache_read_tokens=1500, reasoning_tokens=400)
TEXT = "The meeting is booked for Tuesday at 3pm with the procurement team."
EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
          "response.output_item.done", "response.output_item.added",
          "response.content_part.added", *["response.output_text.delta"] * 6,
          "response.output_text.done", "response.content_part.done",
          "response.output_item.done", "response.completed"]


def expected_cost(usage: FakeUsage = USAGE, model: str = MODEL,
                  tier: str | None = None) -> Decimal:
    result = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                           cache_read_tokens=usage.cache_read_tokens,
                           cache_write_tokens=usage.cache_write_tokens,
                           output_reasoning_tokens=usage.reasoning_tokens),
        model, provider_id="openai", price_context={"service_tier": tier} if tier else None)
    return Decimal(result.total_price)


def assert_priced(row: dict[str, Any], *, streaming: bool = False,
                  tier: str | None = None) -> None:
    assert row["cost_status"] == "priced", row
    assert (row["provider"], row["operation"], row["captured_by"]) == ("openai", "chat",
                                                                       "openai")
    assert row["model"] == MODEL
    assert row["streaming"] == int(streaming)
    assert row["input_tokens"] == USAGE.input_tokens
    assert row["output_tokens"] == USAGE.output_tokens
    assert row["cache_read_tokens"] == USAGE.cache_read_tokens
    assert row["cache_write_tokens"] == 0
    assert row["reasoning_tokens"] == USAGE.reasoning_tokens
    assert row["response_id"].startswith("resp_")
    assert Decimal(row["cost_usd"]) == expected_cost(tier=tier)


@pytest.fixture
def client(fake_provider: FakeProviderServer) -> PaidOpenAI:
    return PaidOpenAI(OpenAI(base_url=fake_provider.openai_url, api_key="sk-test",
                             max_retries=0))


@pytest.fixture
def aclient(fake_provider: FakeProviderServer) -> PaidAsyncOpenAI:
    return PaidAsyncOpenAI(AsyncOpenAI(base_url=fake_provider.openai_url, api_key="sk-test",
                                       max_retries=0))


def trace() -> Any:
    return paid_hooks.paid_tracing("acme", external_agent_id="scheduler")


def test_create(client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        response = client.responses.create(model=MODEL, input="Book the meeting.")
    assert type(response) is Response
    assert response.output_text == TEXT
    [row] = paid_ledger.calls()
    assert_priced(row)
    assert row["response_id"] == response.id


async def test_create_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                            paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        response = await aclient.responses.create(model=MODEL, input="Book the meeting.")
    [row] = paid_ledger.calls()
    assert_priced(row)
    assert row["response_id"] == response.id


def test_flex_service_tier(client: PaidOpenAI, fake_provider: Any,
                           paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE, service_tier="flex"))
    with trace():
        client.responses.create(model=MODEL, input="Book the meeting.", service_tier="flex")
    [row] = paid_ledger.calls()
    assert row["service_tier"] == "flex"
    assert_priced(row, tier="flex")
    assert expected_cost(tier="flex") < expected_cost()


def test_stream_true_passes_every_event_and_records(client: PaidOpenAI, fake_provider: Any,
                                                    paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = client.responses.create(model=MODEL, input="Book it.", stream=True)
        assert isinstance(stream, openai.Stream)
        events = list(stream)
    assert [e.type for e in events] == EVENTS
    assert events[-1].response.usage.input_tokens == USAGE.input_tokens  # nothing hidden
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)
    assert row["response_id"] == events[0].response.id
    assert "stream_options" not in fake_provider.exchanges[0].request_json


async def test_stream_true_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                 paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = await aclient.responses.create(model=MODEL, input="Book it.", stream=True)
        events = [e.type async for e in stream]
    assert events == EVENTS
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


def test_stream_helper(client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace(), client.responses.stream(model=MODEL, input="Book it.") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == TEXT
    assert final.usage is not None and final.usage.output_tokens == USAGE.output_tokens
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)
    assert row["response_id"] == final.id


class Slot(BaseModel):
    day: str
    hour: int


async def test_stream_helper_async_with_text_format(aclient: PaidAsyncOpenAI,
                                                    fake_provider: Any,
                                                    paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text='{"day": "Tuesday", "hour": 15}', usage=USAGE))
    with trace():
        async with aclient.responses.stream(model=MODEL, input="When?",
                                            text_format=Slot) as stream:
            final = await stream.get_final_response()
    assert final.output_parsed == Slot(day="Tuesday", hour=15)
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


def test_stream_helper_left_early(client: PaidOpenAI, fake_provider: Any,
                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        with client.responses.stream(model=MODEL, input="Book it.") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    break
        [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["response_id"].startswith("resp_")  # known from response.created


def test_parse(client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text='{"day": "Monday", "hour": 9}', usage=USAGE))
    with trace():
        parsed = client.responses.parse(model=MODEL, input="When?", text_format=Slot)
    assert parsed.output_parsed == Slot(day="Monday", hour=9)
    [row] = paid_ledger.calls()
    assert_priced(row)


async def test_parse_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                           paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text='{"day": "Friday", "hour": 11}', usage=USAGE))
    with trace():
        parsed = await aclient.responses.parse(model=MODEL, input="When?", text_format=Slot)
    assert parsed.output_parsed == Slot(day="Friday", hour=11)
    [row] = paid_ledger.calls()
    assert_priced(row)


def test_incomplete_response_is_billed(client: PaidOpenAI, fake_provider: Any,
                                       paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE,
                                  extra={"terminal": "response.incomplete"}))
    with trace():
        events = list(client.responses.create(model=MODEL, input="Book it.", stream=True))
    assert events[-1].type == "response.incomplete"
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


def test_failed_response_keeps_its_reported_usage(client: PaidOpenAI, fake_provider: Any,
                                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE, extra={"terminal": "response.failed"}))
    with trace():
        events = list(client.responses.create(model=MODEL, input="Book it.", stream=True))
    assert events[-1].type == "response.failed"
    [row] = paid_ledger.calls()
    assert row["call_status"] == "error" and row["error_type"] == "response.failed"
    assert row["input_tokens"] == USAGE.input_tokens
    assert Decimal(row["cost_usd"]) == expected_cost()


def test_stream_cut_short(client: PaidOpenAI, fake_provider: Any,
                          paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE, cut_stream_after=8))
    with trace():
        events = list(client.responses.create(model=MODEL, input="Book it.", stream=True))
    assert len(events) == 8
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["response_id"] == events[0].response.id


def test_stream_without_usage(client: PaidOpenAI, fake_provider: Any,
                              paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE, omit_usage=True))
    with trace():
        events = list(client.responses.create(model=MODEL, input="Book it.", stream=True))
    assert events[-1].type == "response.completed"
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")


@pytest.mark.parametrize(("status", "error"), [(400, openai.BadRequestError),
                                               (500, openai.InternalServerError)])
def test_errors_cost_nothing(client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView,
                             status: int, error: type[Exception]) -> None:
    fake_provider.queue(FakeReply(status=status))
    with trace(), pytest.raises(error):
        client.responses.create(model=MODEL, input="Book it.", stream=True)
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["error_type"]) == ("no_charge", error.__qualname__)
