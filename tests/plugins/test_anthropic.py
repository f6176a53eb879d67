"""The Anthropic wrapper (``PaidAnthropic`` / ``PaidAsyncAnthropic``) against the fake server.

Every test drives the real ``anthropic`` SDK and asserts exact tokens and exact cost on
the ledger rows, the cost computed independently with genai-prices from the canonical
numbers the fake server was told to report (it renders them in Anthropic's additive form).
"""

from __future__ import annotations

import gc
import json
from decimal import Decimal
from typing import Any

import anthropic
import genai_prices
import pytest
from anthropic import Anthropic, AsyncAnthropic
from anthropic.lib.streaming import AsyncMessageStreamManager, MessageStreamManager
from anthropic.types import Message
from anthropic.types.beta import BetaMessage

from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage
from paid_hooks_anthropic import PaidAnthropic, PaidAsyncAnthropic

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Summarise this ticket in one line."}]
SECRET = "sk-ant-TESTSECRET-42"


def expected_cost(u: FakeUsage, model: str = MODEL, *, web_searches: int = 0) -> Decimal:
    """genai-prices' price for the canonical usage the fake server reported."""
    fields: dict[str, Any] = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}
    if u.cache_read_tokens:
        fields["cache_read_tokens"] = u.cache_read_tokens
    if u.cache_write_tokens:
        fields["cache_write_tokens"] = u.cache_write_tokens
    if u.cache_write_1h_tokens:
        fields["cache_write_1h_tokens"] = u.cache_write_1h_tokens
    if web_searches:
        fields["web_searches"] = web_searches
    price = genai_prices.calc_price(genai_prices.Usage(**fields), model, provider_id="anthropic")
    return Decimal(price.total_price)


def assert_row(row: dict[str, Any], u: FakeUsage, *, streaming: bool, model: str = MODEL,
               web_searches: int = 0) -> None:
    assert row["provider"] == "anthropic"
    assert row["operation"] == "chat"
    assert row["captured_by"] == "anthropic"
    assert row["model"] == model
    assert row["cost_status"] == "priced", row["cost_reason"]
    assert row["input_tokens"] == u.input_tokens
    assert row["output_tokens"] == u.output_tokens
    assert row["cache_read_tokens"] == u.cache_read_tokens
    assert row["cache_write_tokens"] == u.cache_write_tokens
    assert row["streaming"] == int(streaming)
    assert row["external_customer_id"] == "acme"
    assert Decimal(row["cost_usd"]) == expected_cost(u, model, web_searches=web_searches)


@pytest.fixture
def client(fake_provider) -> PaidAnthropic:
    return PaidAnthropic(Anthropic(base_url=fake_provider.anthropic_url, api_key=SECRET,
                                   max_retries=0))


@pytest.fixture
def aclient(fake_provider) -> PaidAsyncAnthropic:
    return PaidAsyncAnthropic(AsyncAnthropic(base_url=fake_provider.anthropic_url,
                                             api_key=SECRET, max_retries=0))


# -- non-streaming ----------------------------------------------------------------------


@pytest.mark.parametrize("usage", [
    pytest.param(FakeUsage(1200, 300), id="plain"),
    pytest.param(FakeUsage(1200, 300, cache_read_tokens=800), id="cache_read"),
    pytest.param(FakeUsage(1200, 300, cache_write_tokens=700), id="cache_write_5m"),
    pytest.param(FakeUsage(1200, 300, cache_write_tokens=700, cache_write_1h_tokens=700),
                 id="cache_write_1h"),
    pytest.param(FakeUsage(3000, 300, cache_read_tokens=1000, cache_write_tokens=900,
                           cache_write_1h_tokens=400), id="cache_mixed"),
])
def test_create_exact_tokens_and_cost(paid_ledger, fake_provider, client, usage):
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        message = client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)
        signal("ticket_summarised", enable_cost_tracing=True)

    assert type(message) is Message
    # The SDK object itself shows Anthropic's additive counts; the ledger the inclusive ones.
    assert message.usage.input_tokens == (usage.input_tokens - usage.cache_read_tokens
                                          - usage.cache_write_tokens)
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)
    assert row["response_id"] == message.id == fake_provider.exchanges[0].response_id
    assert row["service_tier"] == "standard"
    full = paid_ledger.signals()[0]
    assert full["ai_calls"] == 1 and Decimal(full["cost_usd"]) == expected_cost(usage)


def test_cache_write_1h_is_priced_above_5m(paid_ledger, fake_provider, client):
    five_min = FakeUsage(1000, 100, cache_write_tokens=600)
    one_hour = FakeUsage(1000, 100, cache_write_tokens=600, cache_write_1h_tokens=600)
    assert expected_cost(one_hour) > expected_cost(five_min)  # the test can tell them apart
    fake_provider.queue(FakeReply(usage=five_min), FakeReply(usage=one_hour))
    with paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    rows = paid_ledger.calls()
    by_id = {r["response_id"]: r for r in rows}
    first, second = (by_id[e.response_id] for e in fake_provider.exchanges)
    assert Decimal(first["cost_usd"]) == expected_cost(five_min)
    assert Decimal(second["cost_usd"]) == expected_cost(one_hour)
    assert json.loads(second["usage_json"])["cache_write_1h_tokens"] == 600
    assert json.loads(second["usage_json"])["cache_write_5m_tokens"] == 0


def test_thinking_tokens_are_reasoning_inside_output(paid_ledger, fake_provider, client):
    usage = FakeUsage(900, 700, reasoning_tokens=500)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        message = client.messages.create(model=MODEL, max_tokens=2048, messages=MESSAGES)

    assert message.usage.output_tokens_details.thinking_tokens == 500
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)
    assert row["reasoning_tokens"] == 500
    assert row["output_tokens"] == 700  # output already includes thinking: not added again


def test_web_searches_are_a_priced_unit(paid_ledger, fake_provider, client):
    usage = FakeUsage(2000, 400)
    fake_provider.queue(FakeReply(usage=usage, extra={"web_search_requests": 3}))
    with paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES)

    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False, web_searches=3)
    assert expected_cost(usage, web_searches=3) > expected_cost(usage)
    assert '"units":{"web_searches":3}' in row["usage_json"]


def test_service_tier_is_recorded(paid_ledger, fake_provider, client):
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage, service_tier="priority"))
    with paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                               service_tier="auto")
    [row] = paid_ledger.calls()
    assert row["service_tier"] == "priority"


def test_served_model_is_priced(paid_ledger, fake_provider, client):
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage, model="claude-haiku-4-5"))
    with paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert row["request_model"] == MODEL and row["response_model"] == "claude-haiku-4-5"
    assert_row(row, usage, streaming=False, model="claude-haiku-4-5")


async def test_async_create(paid_ledger, fake_provider, aclient):
    usage = FakeUsage(1500, 250, cache_read_tokens=500, cache_write_tokens=300,
                      cache_write_1h_tokens=300)
    fake_provider.queue(FakeReply(usage=usage))
    async with paid_tracing("acme", external_agent_id="support"):
        message = await aclient.messages.create(model=MODEL, max_tokens=512,
                                                messages=MESSAGES)
    assert type(message) is Message
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)
    assert row["response_id"] == message.id


def test_parse(paid_ledger, fake_provider, client):
    usage = FakeUsage(1100, 90, cache_read_tokens=100)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        parsed = client.messages.parse(model=MODEL, max_tokens=64, messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)
    assert row["response_id"] == parsed.id


async def test_async_parse(paid_ledger, fake_provider, aclient):
    usage = FakeUsage(1100, 90)
    fake_provider.queue(FakeReply(usage=usage))
    async with paid_tracing("acme", external_agent_id="support"):
        await aclient.messages.parse(model=MODEL, max_tokens=64, messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)


def test_beta_create(paid_ledger, fake_provider, client):
    usage = FakeUsage(1300, 120, cache_write_tokens=400, cache_write_1h_tokens=400)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        message = client.beta.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                              betas=["context-1m-2025-08-07"])
    assert type(message) is BetaMessage
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)
    assert fake_provider.exchanges[0].request_headers["anthropic-beta"] == "context-1m-2025-08-07"


async def test_async_beta_create(paid_ledger, fake_provider, aclient):
    usage = FakeUsage(1300, 120, cache_read_tokens=300)
    fake_provider.queue(FakeReply(usage=usage))
    async with paid_tracing("acme", external_agent_id="support"):
        message = await aclient.beta.messages.create(model=MODEL, max_tokens=64,
                                                     messages=MESSAGES)
    assert type(message) is BetaMessage
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)


def test_beta_compaction_iterations_are_billed_on_top(paid_ledger, fake_provider, client):
    top = FakeUsage(2300, 100, cache_read_tokens=300)
    compaction = FakeUsage(18000, 350, cache_read_tokens=1000)
    fake_provider.queue(FakeReply(usage=top, extra={"compaction": compaction}))
    with paid_tracing("acme", external_agent_id="support"):
        message = client.beta.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert message.usage.input_tokens == 2000  # the top level leaves the compaction out
    total = FakeUsage(top.input_tokens + compaction.input_tokens,
                      top.output_tokens + compaction.output_tokens,
                      cache_read_tokens=top.cache_read_tokens + compaction.cache_read_tokens)
    [row] = paid_ledger.calls()
    assert_row(row, total, streaming=False)


# -- streaming --------------------------------------------------------------------------


STREAM_CASES = [
    pytest.param(FakeUsage(1200, 300, cache_read_tokens=400), {}, id="start+delta"),
    pytest.param(FakeUsage(1200, 300, cache_write_tokens=500, cache_write_1h_tokens=200),
                 {"delta_usage": "full"}, id="delta_repeats_input"),
]


@pytest.mark.parametrize(("usage", "extra"), STREAM_CASES)
def test_create_stream(paid_ledger, fake_provider, client, usage, extra):
    fake_provider.queue(FakeReply(usage=usage, extra=extra))
    with paid_tracing("acme", external_agent_id="support"):
        stream = client.messages.create(model=MODEL, max_tokens=512, messages=MESSAGES,
                                        stream=True)
        assert type(stream) is anthropic.Stream
        kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=True)  # merged, later wins, never summed
    assert row["response_id"] == fake_provider.exchanges[0].response_id


@pytest.mark.parametrize(("usage", "extra"), STREAM_CASES)
async def test_async_create_stream(paid_ledger, fake_provider, aclient, usage, extra):
    fake_provider.queue(FakeReply(usage=usage, extra=extra))
    async with paid_tracing("acme", external_agent_id="support"):
        stream = await aclient.messages.create(model=MODEL, max_tokens=512,
                                               messages=MESSAGES, stream=True)
        assert type(stream) is anthropic.AsyncStream
        kinds = [event.type async for event in stream]
    assert kinds[-1] == "message_stop"
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=True)


def test_stream_thinking_and_searches_from_the_last_delta(paid_ledger, fake_provider, client):
    usage = FakeUsage(800, 600, reasoning_tokens=450)
    fake_provider.queue(FakeReply(usage=usage, extra={"web_search_requests": 2}))
    with paid_tracing("acme", external_agent_id="support"):
        for _ in client.messages.create(model=MODEL, max_tokens=2048, messages=MESSAGES,
                                        stream=True):
            pass
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=True, web_searches=2)
    assert row["reasoning_tokens"] == 450


@pytest.mark.parametrize("consume", ["text_stream", "get_final_message", "until_done",
                                     "events"])
def test_messages_stream_helper(paid_ledger, fake_provider, client, consume):
    usage = FakeUsage(1400, 210, cache_read_tokens=600, cache_write_tokens=100)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        manager = client.messages.stream(model=MODEL, max_tokens=512, messages=MESSAGES)
        assert type(manager) is MessageStreamManager
        assert fake_provider.exchanges == []  # the request is made on entering
        with manager as stream:
            if consume == "text_stream":
                assert "".join(stream.text_stream) == FakeReply().text
            elif consume == "get_final_message":
                assert stream.get_final_message().usage.output_tokens == 210
            elif consume == "until_done":
                stream.until_done()
            else:
                assert [e.type for e in stream][-1] == "message_stop"
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=True)
    assert row["response_id"] == fake_provider.exchanges[0].response_id


@pytest.mark.parametrize("consume", ["text_stream", "get_final_message", "until_done"])
async def test_async_messages_stream_helper(paid_ledger, fake_provider, aclient, consume):
    usage = FakeUsage(1400, 210, cache_write_tokens=300, cache_write_1h_tokens=300)
    fake_provider.queue(FakeReply(usage=usage))
    async with paid_tracing("acme", external_agent_id="support"):
        manager = aclient.messages.stream(model=MODEL, max_tokens=512, messages=MESSAGES)
        assert type(manager) is AsyncMessageStreamManager
        async with manager as stream:
            if consume == "text_stream":
                assert "".join([t async for t in stream.text_stream]) == FakeReply().text
            elif consume == "get_final_message":
                assert (await stream.get_final_message()).usage.output_tokens == 210
            else:
                await stream.until_done()
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=True)


def test_beta_stream_helper_and_beta_create_stream(paid_ledger, fake_provider, client):
    u1, u2 = FakeUsage(1000, 100, cache_read_tokens=200), FakeUsage(2000, 50)
    fake_provider.queue(FakeReply(usage=u1), FakeReply(usage=u2))
    with paid_tracing("acme", external_agent_id="support"):
        with client.beta.messages.stream(model=MODEL, max_tokens=64,
                                         messages=MESSAGES) as stream:
            assert stream.get_final_message().usage.output_tokens == 100
        for _ in client.beta.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                             stream=True):
            pass
    rows = {r["response_id"]: r for r in paid_ledger.calls()}
    assert len(rows) == 2
    assert_row(rows[fake_provider.exchanges[0].response_id], u1, streaming=True)
    assert_row(rows[fake_provider.exchanges[1].response_id], u2, streaming=True)


async def test_async_beta_stream_helper_and_create_stream(paid_ledger, fake_provider, aclient):
    u1, u2 = FakeUsage(1000, 100), FakeUsage(2000, 50, cache_write_tokens=1000)
    fake_provider.queue(FakeReply(usage=u1), FakeReply(usage=u2))
    async with paid_tracing("acme", external_agent_id="support"):
        async with aclient.beta.messages.stream(model=MODEL, max_tokens=64,
                                                messages=MESSAGES) as stream:
            await stream.until_done()
        stream2 = await aclient.beta.messages.create(model=MODEL, max_tokens=64,
                                                     messages=MESSAGES, stream=True)
        async for _ in stream2:
            pass
    rows = {r["response_id"]: r for r in paid_ledger.calls()}
    assert_row(rows[fake_provider.exchanges[0].response_id], u1, streaming=True)
    assert_row(rows[fake_provider.exchanges[1].response_id], u2, streaming=True)


# -- streams that end early -------------------------------------------------------------


def _assert_unknown(row: dict[str, Any], reason: str = "stream_closed_early") -> None:
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == reason
    assert row["cost_usd"] is None and row["input_tokens"] is None


def test_create_stream_closed_early(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_tracing("acme", external_agent_id="support"):
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True)
        with stream:
            for event in stream:
                if event.type == "content_block_delta":
                    break  # message_start (input counts) was read; the final counts never
    [row] = paid_ledger.calls()
    _assert_unknown(row)
    assert row["response_id"] == fake_provider.exchanges[0].response_id


def test_messages_stream_abandoned_in_the_with_block(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_tracing("acme", external_agent_id="support"), \
            client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        next(iter(stream.text_stream))
    [row] = paid_ledger.calls()
    _assert_unknown(row)


async def test_async_streams_closed_early(paid_ledger, fake_provider, aclient):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)),
                        FakeReply(usage=FakeUsage(1000, 100)))
    async with paid_tracing("acme", external_agent_id="support"):
        async with aclient.messages.stream(model=MODEL, max_tokens=64,
                                           messages=MESSAGES) as stream:
            async for _ in stream.text_stream:
                break
        raw = await aclient.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                            stream=True)
        await raw.__anext__()
        await raw.close()
    rows = paid_ledger.calls()
    assert len(rows) == 2
    for row in rows:
        _assert_unknown(row)


def test_stream_cut_by_the_server(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100), cut_stream_after=3))
    with paid_tracing("acme", external_agent_id="support"):
        events = list(client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                             stream=True))
    assert events[0].type == "message_start" and events[-1].type != "message_stop"
    [row] = paid_ledger.calls()
    _assert_unknown(row)


def test_stream_dropped_unread(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_tracing("acme", external_agent_id="support"):
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True)
        del stream
        gc.collect()
    [row] = paid_ledger.calls()
    _assert_unknown(row)


def test_stream_closed_after_the_final_delta_keeps_its_usage(paid_ledger, fake_provider,
                                                             client):
    usage = FakeUsage(1000, 100, cache_read_tokens=100)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True)
        for event in stream:
            if event.type == "message_delta":
                break
        stream.close()
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=True)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_class"), [
    (400, anthropic.BadRequestError),
    (429, anthropic.RateLimitError),
    (500, anthropic.InternalServerError),
])
def test_error_reaches_the_caller_unchanged_and_costs_nothing(paid_ledger, fake_provider,
                                                              client, status, error_class):
    fake_provider.queue(FakeReply(status=status, error_message="prompt is too long"))
    with paid_tracing("acme", external_agent_id="support"), pytest.raises(error_class) as info:
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert type(info.value) is error_class
    assert info.value.status_code == status
    assert "prompt is too long" in str(info.value)
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["call_status"] == "error"
    assert row["error_type"] == error_class.__name__
    assert row["cost_usd"] is None


async def test_async_errors_on_create_and_stream(paid_ledger, fake_provider, aclient):
    fake_provider.queue(FakeReply(status=400), FakeReply(status=529), FakeReply(status=500))
    async with paid_tracing("acme", external_agent_id="support"):
        with pytest.raises(anthropic.BadRequestError):
            await aclient.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        with pytest.raises(anthropic.OverloadedError):
            async with aclient.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES):
                pass
        with pytest.raises(anthropic.InternalServerError):
            await aclient.beta.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                               stream=True)
    rows = paid_ledger.calls()
    assert [r["cost_status"] for r in rows] == ["no_charge"] * 3
    assert sorted(r["error_type"] for r in rows) == ["BadRequestError", "InternalServerError",
                                                     "OverloadedError"]


def test_sync_stream_error(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(status=529))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(anthropic.OverloadedError), \
            client.beta.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES):
        pass
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge" and row["streaming"] == 1


def test_retried_call_is_one_row(paid_ledger, fake_provider):
    client = PaidAnthropic(Anthropic(base_url=fake_provider.anthropic_url, api_key=SECRET,
                                     max_retries=2))
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(status=529), FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        client.with_options(timeout=30).messages.create(model=MODEL, max_tokens=64,
                                                        messages=MESSAGES)
    assert len(fake_provider.exchanges) == 2
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)


# -- the wrapper itself -----------------------------------------------------------------


def test_wrapper_passes_everything_else_through(fake_provider):
    inner = Anthropic(base_url=fake_provider.anthropic_url, api_key=SECRET)
    client = PaidAnthropic(inner)
    assert client.api_key == SECRET
    assert client.base_url == inner.base_url
    assert client.messages.batches is inner.messages.batches
    assert client.messages.count_tokens == inner.messages.count_tokens
    assert client.beta.models is inner.beta.models
    assert client.models is inner.models
    copy = client.with_options(max_retries=5)
    assert isinstance(copy, PaidAnthropic) and copy.max_retries == 5
    assert isinstance(client.copy(), PaidAnthropic)
    assert "messages" in dir(client)
    with client as entered:
        assert entered is client


async def test_async_wrapper_passes_through(fake_provider):
    inner = AsyncAnthropic(base_url=fake_provider.anthropic_url, api_key=SECRET)
    client = PaidAsyncAnthropic(inner)
    assert client.messages.batches is inner.messages.batches
    assert isinstance(client.with_options(max_retries=1), PaidAsyncAnthropic)
    async with client as entered:
        assert entered is client


def test_with_options_client_records(paid_ledger, fake_provider, client):
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        client.with_options(max_retries=1).messages.create(model=MODEL, max_tokens=64,
                                                           messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert_row(row, usage, streaming=False)


def test_no_api_key_or_header_in_the_ledger(paid_ledger, fake_provider):
    client = PaidAnthropic(Anthropic(base_url=fake_provider.anthropic_url, api_key=SECRET,
                                     default_headers={"x-api-key": SECRET}))
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)), FakeReply(status=401),
                        FakeReply(usage=FakeUsage(500, 50), cut_stream_after=2))
    with paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        with pytest.raises(anthropic.AuthenticationError):
            client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            stream.until_done()
        signal("ticket_summarised", enable_cost_tracing=True)

    # The key did reach the provider (SDK 2.14 sends it as a Bearer token) ...
    headers = fake_provider.exchanges[0].request_headers
    assert headers["authorization"] == f"Bearer {SECRET}" and headers["x-api-key"] == SECRET
    # ... and is nowhere in what the ledger stored.
    rows = paid_ledger.calls() + paid_ledger.signals()
    assert len(rows) == 4
    dumped = repr(rows)
    assert SECRET not in dumped and "TESTSECRET" not in dumped
    assert "Bearer" not in dumped and "x-api-key" not in dumped
    assert "Summarise this ticket" not in dumped  # no prompt text either


def test_stream_error_event_before_any_message_costs_nothing(paid_ledger, fake_provider,
                                                             client):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100),
                                  extra={"stream_error": "before_start"}))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(anthropic.APIStatusError) as info:
        for _ in client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True):
            pass
    assert "overloaded_error" in str(info.value)
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge" and row["call_status"] == "error"


async def test_stream_error_event_after_message_start_is_usage_unknown(paid_ledger,
                                                                       fake_provider, aclient):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100),
                                  extra={"stream_error": "after_start"}))
    async with paid_tracing("acme", external_agent_id="support"):
        with pytest.raises(anthropic.APIStatusError):
            async with aclient.messages.stream(model=MODEL, max_tokens=64,
                                               messages=MESSAGES) as stream:
                await stream.get_final_message()
    [row] = paid_ledger.calls()
    _assert_unknown(row, "stream_error")


# -- cheap paths: kept proxies, events read by class, no weakref.finalize ----------------


def test_wrapper_keeps_its_resource_proxies_while_the_sdk_keeps_its_resources(
        paid_ledger, fake_provider, client, aclient):
    assert client.messages is client.messages
    assert client.beta is client.beta and client.beta.messages is client.beta.messages
    assert aclient.messages is aclient.messages
    assert aclient.beta.messages is aclient.beta.messages
    before = client.messages
    inner = client._paid_wrapped
    del inner.__dict__["messages"]  # the SDK builds a new resource: a new proxy wraps it
    assert client.messages is not before
    assert client.messages._paid_wrapped is inner.messages
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert_row(row, FakeUsage(1000, 100), streaming=False)


def test_streams_register_no_weakref_finalize(paid_ledger, fake_provider, client):
    import weakref

    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)),
                        FakeReply(usage=FakeUsage(1000, 100)))
    registered = len(weakref.finalize._registry)  # type: ignore[attr-defined]
    with paid_tracing("acme", external_agent_id="support"):
        for _ in client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True):
            assert len(weakref.finalize._registry) == registered  # type: ignore[attr-defined]
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True)
        assert len(weakref.finalize._registry) == registered  # type: ignore[attr-defined]
        del stream
        gc.collect()
    first, second = paid_ledger.calls()
    assert_row(first, FakeUsage(1000, 100), streaming=True)
    _assert_unknown(second)


async def test_async_stream_dropped_unread(paid_ledger, fake_provider, aclient):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    async with paid_tracing("acme", external_agent_id="support"):
        stream = await aclient.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                               stream=True)
        del stream
        gc.collect()
    [row] = paid_ledger.calls()
    _assert_unknown(row)


@pytest.mark.parametrize("as_dicts", [True, False], ids=["dict_events", "sdk_events"])
def test_stream_events_are_read_by_type_or_by_class(paid_ledger, as_dicts):
    """Events of a class the plugin does not know are read by their ``type``; the SDK's
    own event classes by their class. Both record the same usage."""
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    import paid_hooks
    from paid_hooks_anthropic._streams import StreamRecorder, _observe

    usage = {"input_tokens": 1000, "output_tokens": 1, "cache_read_input_tokens": 0,
             "cache_creation_input_tokens": 0, "service_tier": "priority"}
    events: list[Any] = [
        {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"output_tokens": 100}},
        {"type": "message_stop"},
    ]
    if not as_dicts:
        adapter: Any = TypeAdapter(RawMessageStreamEvent)
        events = [adapter.validate_python(event) for event in events]
    with paid_tracing("acme", external_agent_id="support"):
        handle = paid_hooks.start_call(provider="anthropic", operation="chat",
                                       request_model=MODEL, captured_by="anthropic",
                                       streaming=True)
        assert list(_observe(iter(events), StreamRecorder(handle))) == events
        assert handle.done
    [row] = paid_ledger.calls()
    assert_row(row, FakeUsage(1000, 100), streaming=True)
    assert row["service_tier"] == "priority"
    assert row["response_id"] == "msg_1"


def test_stream_usage_is_read_on_the_pipeline_worker(paid_ledger, fake_provider, client,
                                                     reader_threads):
    """The stream's events are only kept on the caller's thread; the usage, model and id
    are read and merged on the pipeline worker."""
    from paid_hooks_anthropic import _streams

    readers = reader_threads(_streams, "stream_reading")
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_tracing("acme", external_agent_id="support"):
        assert len(list(client.messages.create(model=MODEL, max_tokens=64,
                                               messages=MESSAGES, stream=True))) > 3
    [row] = paid_ledger.calls()
    assert_row(row, FakeUsage(1000, 100), streaming=True)
    assert readers == ["paid-hooks-pipeline"]


def test_stream_observation_attaches_two_attributes_and_records_once(paid_ledger, fake_provider,
                                                                     client, monkeypatch):
    """A cheap-path guard: the stream gets its event iterator and ``close`` (a method of
    the one recorder, no closure, no guard object, no lock), and a stream read to the end
    is recorded by one ``settle`` (at ``message_stop``), none at its end or collection."""
    from paid_hooks_anthropic import _streams

    settles: list[str] = []
    original = _streams.StreamRecorder.settle

    def counted(self: Any, reason: str) -> None:
        settles.append(reason)
        original(self, reason)

    monkeypatch.setattr(_streams.StreamRecorder, "settle", counted)
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)),
                        FakeReply(usage=FakeUsage(1000, 100)))
    bare = client._paid_wrapped.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                                stream=True)  # outside paid_tracing: no row
    bare_attributes = set(vars(bare))
    bare.close()
    with paid_tracing("acme", external_agent_id="support"):
        stream = client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True)
        assert type(stream) is anthropic.Stream
        assert set(vars(stream)) - bare_attributes == {"_iterator", "close"}
        assert isinstance(stream.close.__self__, _streams.StreamRecorder)
        events = list(stream)
        assert events[-1].type == "message_stop"
        del stream, events
        gc.collect()
    assert settles == ["stream_usage_incomplete"]
    [row] = paid_ledger.calls()
    assert_row(row, FakeUsage(1000, 100), streaming=True)


async def test_async_stream_close_is_a_coroutine_function_and_records_once(paid_ledger,
                                                                         fake_provider,
                                                                         aclient):
    import inspect

    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    async with paid_tracing("acme", external_agent_id="support"):
        stream = await aclient.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                               stream=True)
        assert type(stream) is anthropic.AsyncStream
        assert inspect.iscoroutinefunction(stream.close)
        async for event in stream:
            if event.type == "message_delta":
                break
        await stream.close()
        await stream.close()  # a second close records nothing more
        assert stream.response.is_closed
        del stream
        gc.collect()
    [row] = paid_ledger.calls()
    assert_row(row, FakeUsage(1000, 100), streaming=True)
