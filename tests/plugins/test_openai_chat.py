"""OpenAI plugin, Chat Completions through the ``PaidOpenAI`` wrapper, on the real SDK.

Every test drives ``openai.OpenAI`` / ``openai.AsyncOpenAI`` against the local fake
provider inside ``paid_tracing`` and checks the ledger row: exact tokens, exact cost
(computed independently with genai-prices), and the cost status for the unhappy paths.
"""

from __future__ import annotations

import gc
import json
import re
import sqlite3
from decimal import Decimal
from typing import Any

import genai_prices
import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI

MODEL = "gpt-4o-mini"
API_KEY = "sk-test-SECRET-chat-7f3a9c"
MESSAGES = [{"role": "user", "content": "Is this lead interested?"}]
USAGE = FakeUsage(1200, 300, cache_read_tokens=200, reasoning_tokens=50)
TEXT = "Yes, the lead asked for a demo next Tuesday afternoon."


def expected_cost(usage: FakeUsage, model: str = MODEL, tier: str | None = None) -> Decimal:
    """genai-prices' price of ``usage``, independent of paid-hooks."""
    result = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                           cache_read_tokens=usage.cache_read_tokens,
                           output_reasoning_tokens=usage.reasoning_tokens),
        model, provider_id="openai",
        price_context={"service_tier": tier} if tier else None)
    return Decimal(result.total_price)


def assert_priced(row: dict[str, Any], usage: FakeUsage = USAGE, model: str = MODEL,
                  *, streaming: bool = False, tier: str | None = None) -> None:
    assert row["cost_status"] == "priced", row
    assert row["provider"] == "openai" and row["captured_by"] == "openai"
    assert row["operation"] == "chat"
    assert row["model"] == model
    assert row["streaming"] == int(streaming)
    assert row["input_tokens"] == usage.input_tokens
    assert row["output_tokens"] == usage.output_tokens
    assert row["cache_read_tokens"] == usage.cache_read_tokens
    assert row["reasoning_tokens"] == usage.reasoning_tokens
    assert row["external_customer_id"] == "acme"
    assert Decimal(row["cost_usd"]) == expected_cost(usage, model, tier)


@pytest.fixture
def client(fake_provider: FakeProviderServer) -> PaidOpenAI:
    return PaidOpenAI(OpenAI(base_url=fake_provider.openai_url, api_key=API_KEY, max_retries=0))


@pytest.fixture
def aclient(fake_provider: FakeProviderServer) -> PaidAsyncOpenAI:
    return PaidAsyncOpenAI(AsyncOpenAI(base_url=fake_provider.openai_url, api_key=API_KEY,
                                       max_retries=0))


def trace() -> Any:
    return paid_hooks.paid_tracing("acme", external_agent_id="sdr")


# -- non-streaming -----------------------------------------------------------------------


def test_create_records_exact_tokens_and_cost(client: PaidOpenAI, fake_provider: Any,
                                              paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        paid_hooks.signal("lead_qualified", enable_cost_tracing=True)
    assert type(reply) is ChatCompletion
    assert reply.choices[0].message.content == TEXT
    [row] = paid_ledger.calls()
    assert_priced(row)
    assert row["response_id"] == reply.id == fake_provider.exchanges[0].response_id
    assert row["service_tier"] == "default"
    [signal] = paid_ledger.signals()
    assert signal["ai_calls"] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_chat_usage_is_read_on_the_pipeline_worker(client: PaidOpenAI, fake_provider: Any,
                                                   paid_ledger: LedgerView,
                                                   reader_threads: Any,
                                                   stream: bool) -> None:
    """A chat completion's usage (a stream's too) is normalised off the caller's thread."""
    from paid_hooks_openai import _usage

    threads = reader_threads(_usage, "chat_usage")
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        if stream:
            chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                          stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
        else:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
    paid_hooks.flush()
    assert threads == ["paid-hooks-pipeline"]
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=stream)


async def test_create_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                            paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        reply = await aclient.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert type(reply) is ChatCompletion
    [row] = paid_ledger.calls()
    assert_priced(row)
    assert row["response_id"] == reply.id


@pytest.mark.parametrize(("tier", "model"), [("flex", "gpt-5-mini"), ("priority", MODEL)])
def test_service_tier_prices_flex_and_priority(client: PaidOpenAI, fake_provider: Any,
                                               paid_ledger: LedgerView, tier: str,
                                               model: str) -> None:
    fake_provider.queue(FakeReply(usage=USAGE, service_tier=tier))
    with trace():
        client.chat.completions.create(model=model, messages=MESSAGES, service_tier=tier)
    [row] = paid_ledger.calls()
    assert row["service_tier"] == tier
    assert_priced(row, model=model, tier=tier)
    assert expected_cost(USAGE, model, tier) != expected_cost(USAGE, model)


class Verdict(BaseModel):
    interested: bool
    reason: str


def test_parse_records_and_returns_the_parsed_completion(client: PaidOpenAI, fake_provider: Any,
                                                         paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text='{"interested": true, "reason": "asked for a demo"}',
                                  usage=USAGE))
    with trace():
        reply = client.chat.completions.parse(model=MODEL, messages=MESSAGES,
                                              response_format=Verdict)
    assert reply.choices[0].message.parsed == Verdict(interested=True, reason="asked for a demo")
    [row] = paid_ledger.calls()
    assert_priced(row)
    assert row["response_id"] == reply.id


async def test_parse_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                           paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text='{"interested": false, "reason": "no budget"}',
                                  usage=USAGE))
    with trace():
        reply = await aclient.chat.completions.parse(model=MODEL, messages=MESSAGES,
                                                     response_format=Verdict)
    assert reply.choices[0].message.parsed is not None
    assert reply.choices[0].message.parsed.interested is False
    [row] = paid_ledger.calls()
    assert_priced(row)


# -- streaming: include_usage injection and hiding ---------------------------------------


def test_stream_gets_usage_the_caller_did_not_ask_for_and_hides_it(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    kwargs: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "stream": True}
    with trace():
        stream = client.chat.completions.create(**kwargs)
        assert isinstance(stream, openai.Stream)
        assert isinstance(stream.response, httpx.Response)
        chunks = list(stream)
    # The request carried include_usage; the caller's arguments were not mutated.
    assert fake_provider.exchanges[0].request_json["stream_options"] == {"include_usage": True}
    assert "stream_options" not in kwargs
    # The caller sees exactly the chunks of a stream without include_usage.
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)
    assert row["response_id"] == chunks[0].id


def test_stream_caller_who_asked_for_usage_sees_the_usage_chunk(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    options = {"include_usage": True}
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True, stream_options=options))
    assert options == {"include_usage": True}
    assert fake_provider.exchanges[0].request_json["stream_options"] == {"include_usage": True}
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.prompt_tokens == USAGE.input_tokens
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


def test_stream_keeps_the_callers_other_stream_options(client: PaidOpenAI, fake_provider: Any,
                                                       paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    options = {"include_obfuscation": False}
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True, stream_options=options))
    assert options == {"include_obfuscation": False}
    assert fake_provider.exchanges[0].request_json["stream_options"] == {
        "include_obfuscation": False, "include_usage": True}
    assert all(c.choices for c in chunks)
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


async def test_stream_async_injects_and_hides(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                              paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = await aclient.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                       stream=True)
        assert isinstance(stream, openai.AsyncStream)
        async with stream:
            chunks = [c async for c in stream]
    assert fake_provider.exchanges[0].request_json["stream_options"] == {"include_usage": True}
    assert all(c.choices and c.usage is None for c in chunks)
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


def test_stream_used_as_context_manager(client: PaidOpenAI, fake_provider: Any,
                                        paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace(), client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                        stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == TEXT
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


def test_injection_can_be_switched_off(client: PaidOpenAI, fake_provider: Any,
                                       paid_ledger: LedgerView,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAID_HOOKS_OPENAI_STREAM_USAGE", "0")
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True))
    assert "stream_options" not in fake_provider.exchanges[0].request_json
    assert chunks[-1].choices[0].finish_reason == "stop"
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "not_reported"


# -- streaming: abandoned, cut short, missing usage --------------------------------------


def test_stream_closed_early_is_usage_unknown(client: PaidOpenAI, fake_provider: Any,
                                              paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        first = next(stream)
        stream.close()
        [row] = paid_ledger.calls()  # recorded at close, not at garbage collection
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"
    assert row["cost_usd"] is None and row["input_tokens"] is None
    assert row["response_id"] == first.id
    assert row["streaming"] == 1


def test_stream_broken_out_of_inside_with_is_usage_unknown(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        with client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                            stream=True) as stream:
            for _ in stream:
                break
        [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_stream_garbage_collected_midway_is_usage_unknown(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        next(stream)
        del stream
        gc.collect()
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_stream_never_iterated_and_collected_is_usage_unknown(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        gc.collect()
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def _error_stream_route(fake_provider: Any, prefix: str, before: int) -> PaidOpenAI:
    """A chat stream that sends ``before`` chunks, then an SSE error event."""
    def route(server: Any, request: Any, match: re.Match[str]) -> Any:
        from paid_hooks.testing.fake.server import sse_event, sse_response

        chunk = {"id": "chatcmpl-err", "object": "chat.completion.chunk", "created": 1,
                 "model": MODEL, "choices": [{"index": 0, "delta": {"content": "ok"},
                                              "finish_reason": None}]}
        events = [sse_event(chunk) for _ in range(before)]
        events.append(sse_event({"error": {"message": "overloaded mid-stream"}}))
        return sse_response(iter(events))

    fake_provider.route("POST", rf"/{prefix}/chat/completions", route)
    return PaidOpenAI(OpenAI(base_url=f"{fake_provider.url}/{prefix}", api_key=API_KEY,
                             max_retries=0))


@pytest.mark.parametrize(("before", "status", "reason"), [
    (2, "usage_unknown", "stream_error:APIError"), (0, "no_charge", "APIError")])
def test_error_event_inside_a_stream(fake_provider: Any, paid_ledger: LedgerView, before: int,
                                     status: str, reason: str) -> None:
    client = _error_stream_route(fake_provider, f"stream-error-{before}", before)
    received = []
    with trace(), pytest.raises(openai.APIError, match="overloaded mid-stream"):
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                    stream=True):
            received.append(chunk)
    assert len(received) == before
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == (status, reason)


async def test_stream_async_closed_early(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                         paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = await aclient.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                       stream=True)
        async for _ in stream:
            break
        await stream.close()
        [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_stream_cut_by_the_server_is_usage_unknown(client: PaidOpenAI, fake_provider: Any,
                                                   paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE, cut_stream_after=3))
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True))
    assert len(chunks) == 3
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_stream_cut_just_before_the_usage_chunk(client: PaidOpenAI, fake_provider: Any,
                                                paid_ledger: LedgerView) -> None:
    pieces = len(TEXT) // 12 + 1
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE, cut_stream_after=pieces + 2))
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"


def test_stream_without_usage_from_the_server(client: PaidOpenAI, fake_provider: Any,
                                              paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE, omit_usage=True))
    with trace():
        text = "".join(c.choices[0].delta.content or ""
                       for c in client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                               stream=True))
    assert text == TEXT
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")


# -- the chat.completions.stream() helper ------------------------------------------------


def test_stream_helper_records_and_hides_usage(client: PaidOpenAI, fake_provider: Any,
                                               paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace(), client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == TEXT
    assert final.usage is None  # the caller did not ask for usage
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)
    assert row["response_id"] == final.id


def test_stream_helper_with_include_usage_keeps_it(client: PaidOpenAI, fake_provider: Any,
                                                   paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace(), client.chat.completions.stream(model=MODEL, messages=MESSAGES,
                                        stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.usage is not None and final.usage.completion_tokens == USAGE.output_tokens
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


def test_stream_helper_left_early_is_recorded_on_exit(client: PaidOpenAI, fake_provider: Any,
                                                      paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
            for _ in stream:
                break
        [row] = paid_ledger.calls()  # ``stream`` is still referenced: closed, not collected
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


async def test_stream_helper_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                   paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text='{"interested": true, "reason": "demo"}', usage=USAGE))
    with trace():
        async with aclient.chat.completions.stream(model=MODEL, messages=MESSAGES,
                                                   response_format=Verdict) as stream:
            final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == Verdict(interested=True, reason="demo")
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


# -- errors and bad usage never break the caller ------------------------------------------


@pytest.mark.parametrize(("status", "error"), [
    (400, openai.BadRequestError), (401, openai.AuthenticationError),
    (429, openai.RateLimitError), (500, openai.InternalServerError),
    (503, openai.InternalServerError)])
@pytest.mark.parametrize("stream", [False, True])
def test_error_reaches_the_caller_unchanged_and_costs_nothing(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView, status: int,
        error: type[Exception], stream: bool) -> None:
    fake_provider.queue(FakeReply(status=status, error_message="slow down"))
    with trace(), pytest.raises(error, match="slow down") as info:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
    assert type(info.value) is error
    assert getattr(info.value, "status_code", None) == status
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["call_status"] == "error"
    assert row["error_type"] == error.__qualname__
    assert row["cost_usd"] is None


async def test_error_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                           paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(status=429, error_message="slow down"))
    with trace(), pytest.raises(openai.RateLimitError):
        await aclient.chat.completions.create(model=MODEL, messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["error_type"]) == ("no_charge", "RateLimitError")


def test_missing_usage_is_usage_unknown(client: PaidOpenAI, fake_provider: Any,
                                        paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, omit_usage=True))
    with trace():
        reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert reply.usage is None and reply.choices[0].message.content == TEXT
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")
    assert row["response_id"] == reply.id


MALFORMED_USAGE = ["garbage", {"prompt_tokens": "many", "completion_tokens": None},
                   {"completion_tokens": [1, 2]}, 42]


@pytest.mark.parametrize("usage", MALFORMED_USAGE, ids=["str", "str-count", "list", "int"])
def test_malformed_usage_never_breaks_the_caller(fake_provider: Any, paid_ledger: LedgerView,
                                                 usage: Any) -> None:
    def malformed(server: Any, request: Any, match: re.Match[str]) -> Any:
        from paid_hooks.testing.fake.server import json_response

        return json_response(200, {
            "id": "chatcmpl-malformed", "object": "chat.completion", "created": 1,
            "model": MODEL, "usage": usage,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}]})

    fake_provider.route("POST", r"/malformed-usage/chat/completions", malformed)
    client = PaidOpenAI(OpenAI(base_url=f"{fake_provider.url}/malformed-usage", api_key=API_KEY,
                               max_retries=0))
    with trace():
        reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert reply.choices[0].message.content == "ok"
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["response_id"] == "chatcmpl-malformed"


def test_malformed_usage_chunk_in_a_stream(fake_provider: Any, paid_ledger: LedgerView) -> None:
    def malformed(server: Any, request: Any, match: re.Match[str]) -> Any:
        from paid_hooks.testing.fake.server import sse_event, sse_response

        base = {"id": "chatcmpl-bad", "object": "chat.completion.chunk", "created": 1,
                "model": MODEL}
        return sse_response(iter([
            sse_event({**base, "choices": [{"index": 0, "delta": {"content": "ok"},
                                            "finish_reason": "stop"}], "usage": None}),
            sse_event({**base, "choices": [], "usage": {"prompt_tokens": "lots"}}),
            sse_event("[DONE]")]))

    fake_provider.route("POST", r"/malformed-stream/chat/completions", malformed)
    client = PaidOpenAI(OpenAI(base_url=f"{fake_provider.url}/malformed-stream",
                               api_key=API_KEY, max_retries=0))
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["ok"]
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")


# -- pass-through: other resources, options, raw responses --------------------------------


def test_other_resources_pass_through_unchanged(fake_provider: Any) -> None:
    raw = OpenAI(base_url=fake_provider.openai_url, api_key=API_KEY, max_retries=0)
    client = PaidOpenAI(raw)
    assert client.files is raw.files
    assert client.models is raw.models
    assert client.batches is raw.batches
    assert client.moderations is raw.moderations
    assert client.api_key == API_KEY
    assert client.chat.completions.retrieve == raw.chat.completions.retrieve
    assert "chat" in dir(client)


def test_with_options_returns_a_recording_wrapper(client: PaidOpenAI, fake_provider: Any,
                                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    tuned = client.with_options(timeout=7.5, max_retries=0)
    assert isinstance(tuned, PaidOpenAI)
    assert tuned.timeout == 7.5
    with trace():
        tuned.chat.completions.create(model=MODEL, messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert_priced(row)


def test_with_raw_response_is_recorded(client: PaidOpenAI, fake_provider: Any,
                                       paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    with trace():
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    assert raw.headers["content-type"] == "application/json"
    completion = raw.parse()
    assert type(completion) is ChatCompletion
    [row] = paid_ledger.calls()
    assert_priced(row)
    assert row["response_id"] == completion.id


def test_with_raw_response_stream_is_not_modified(client: PaidOpenAI, fake_provider: Any,
                                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    with trace():
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES,
                                                               stream=True)
        stream = raw.parse()
        assert raw.parse() is stream
        chunks = list(stream)
        asked = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        last = list(asked.parse())[-1]
    assert "stream_options" not in fake_provider.exchanges[0].request_json
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert last.choices == [] and last.usage is not None
    unasked, with_usage = paid_ledger.calls()
    assert (unasked["cost_status"], unasked["cost_reason"]) == ("usage_unknown", "not_reported")
    assert unasked["response_id"] == chunks[0].id
    assert_priced(with_usage, streaming=True)


def test_with_streaming_response_parsed(client: PaidOpenAI, fake_provider: Any,
                                        paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    with trace(), client.chat.completions.with_streaming_response.create(
            model=MODEL, messages=MESSAGES) as response:
        completion = response.parse()
    [row] = paid_ledger.calls()
    assert_priced(row)
    assert row["response_id"] == completion.id


def test_with_streaming_response_read_without_parse(client: PaidOpenAI, fake_provider: Any,
                                                    paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    with trace():
        with client.chat.completions.with_streaming_response.create(
                model=MODEL, messages=MESSAGES) as response:
            body = response.json()
        with client.chat.completions.with_streaming_response.create(
                model=MODEL, messages=MESSAGES, stream=True):
            pass  # never read
    read, unread = paid_ledger.calls()
    assert_priced(read)
    assert read["response_id"] == body["id"]
    assert (unread["cost_status"], unread["cost_reason"]) == ("usage_unknown",
                                                               "raw_response_not_inspected")


async def test_with_streaming_response_stream_as_the_agents_sdk_does(
        aclient: PaidAsyncOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    with trace():
        async with aclient.responses.with_streaming_response.create(
                model=MODEL, input="hi", stream=True) as response:
            stream = await response.parse()
            assert isinstance(stream, openai.AsyncStream)
            events = [e async for e in stream]
    assert events[-1].type == "response.completed"
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "priced"
    assert row["response_id"] == events[0].response.id
    assert (row["input_tokens"], row["output_tokens"]) == (USAGE.input_tokens,
                                                           USAGE.output_tokens)


# -- secrets ------------------------------------------------------------------------------


def test_no_api_key_or_authorization_header_in_the_ledger(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE),
                        FakeReply(text=TEXT, usage=USAGE),
                        FakeReply(status=401, error_message="bad key"))
    with trace():
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        paid_hooks.signal("lead_qualified", enable_cost_tracing=True)
    authorization = fake_provider.exchanges[0].request_headers["authorization"]
    assert authorization == f"Bearer {API_KEY}"
    rows = paid_ledger.calls()
    assert len(rows) == 3
    dumped = json.dumps([rows, paid_ledger.signals()], default=str)
    assert API_KEY not in dumped and "Bearer" not in dumped
    database = paid_ledger.url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for record in conn.execute(f"SELECT * FROM {table}"):
                assert API_KEY not in repr(record)


# -- streams: what one stream leaves behind (regression guards, no timing) ---------------


def _stream_objects() -> list[Any]:
    from paid_hooks_openai import _streams

    return [o for o in gc.get_objects() if isinstance(o, _streams.StreamRecord)]


def test_stream_registers_no_finalizer_and_leaves_no_cycle(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    """A read stream's record, observer and response hook are freed with the stream (no
    ``weakref.finalize`` entry, nothing left for the garbage collector); the hook is taken
    off the response once it was closed."""
    import weakref

    from paid_hooks_openai._streams import StreamRecord

    def finalizers() -> list[Any]:
        registry = weakref.finalize._registry  # type: ignore[attr-defined]
        return [i for i in list(registry.values())
                if isinstance(getattr(i.func, "__self__", None), StreamRecord)]

    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE), FakeReply(text=TEXT, usage=USAGE))
    gc.collect()
    gc.disable()
    try:
        with trace():
            stream = client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                    stream=True)
            assert finalizers() == []
            assert "close" in vars(stream.response)
            for _ in stream:
                pass
            assert "close" not in vars(stream.response)  # the class's own close again
            stream.response.close()  # closing again records nothing more
            del stream, _
            assert _stream_objects() == []
            # dropped before its first item: recorded at once by the guard in the stream's
            # __dict__ (the SDK's own unstarted generator cycle waits for the collector)
            client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            assert len(paid_ledger.calls()) == 2
    finally:
        gc.enable()
    first, second = paid_ledger.calls()
    assert_priced(first, streaming=True)
    assert (second["cost_status"], second["cost_reason"]) == ("usage_unknown",
                                                              "stream_closed_early")


def test_stream_response_closed_by_the_caller_midway_records_once(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        first = next(stream)
        stream.response.close()
        [row] = paid_ledger.calls()  # at the close of the response itself
        stream.close()
        del stream
        gc.collect()
    assert len(paid_ledger.calls()) == 1
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["response_id"] == first.id


async def test_stream_async_hook_is_taken_off_and_nothing_left(
        aclient: PaidAsyncOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    gc.collect()
    gc.disable()
    try:
        with trace():
            stream = await aclient.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                           stream=True)
            assert "aclose" in vars(stream.response)
            async for _ in stream:
                pass
            assert "aclose" not in vars(stream.response)
            del stream, _
            assert _stream_objects() == []
    finally:
        gc.enable()
    [row] = paid_ledger.calls()
    assert_priced(row, streaming=True)


# -- streams: chunk shapes the chat loop reads inline ------------------------------------

SERVED = "gpt-4o-mini-2024-07-18"
AZURE_FILTER = {"id": "", "object": "", "created": 0, "model": "", "choices": [],
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
"""Azure's first chunk: no id, no model, no usage, empty choices."""
AZURE_ANNOTATION = {"id": "", "object": "", "created": 0, "model": "",
                    "choices": [{"index": 0, "finish_reason": None, "delta": {},
                                 "content_filter_results": {"hate": {"filtered": False}}}]}
"""Azure's asynchronous-filter annotation chunk: may come after the finish chunk."""


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-inline", "object": "chat.completion.chunk", "created": 1,
            "model": SERVED, "service_tier": "default", "choices": choices, **extra}


def _delta(index: int, content: str | None, finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": {} if content is None else {"content": content},
            "finish_reason": finish}


def _usage_chunk() -> dict[str, Any]:
    return _chunk([], usage={"prompt_tokens": USAGE.input_tokens,
                             "completion_tokens": USAGE.output_tokens,
                             "prompt_tokens_details": {"cached_tokens": USAGE.cache_read_tokens},
                             "completion_tokens_details": {
                                 "reasoning_tokens": USAGE.reasoning_tokens}})


def _chunks_route(fake_provider: Any, prefix: str, chunks: list[Any], *,
                  asynchronous: bool = False) -> Any:
    """A client whose chat streams send exactly ``chunks`` (``"[DONE]"`` ends one;
    ``"error"`` sends an SSE error event)."""
    def route(server: Any, request: Any, match: re.Match[str]) -> Any:
        from paid_hooks.testing.fake.server import sse_event, sse_response

        events = [sse_event({"error": {"message": "overloaded mid-stream"}}) if c == "error"
                  else sse_event(c) for c in chunks]
        return sse_response(iter(events))

    fake_provider.route("POST", rf"/{prefix}/chat/completions", route)
    base_url = f"{fake_provider.url}/{prefix}"
    if asynchronous:
        return PaidAsyncOpenAI(AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0))
    return PaidOpenAI(OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0))


AZURE_STREAM = [AZURE_FILTER,
                _chunk([_delta(0, "Yes")]),
                {k: v for k, v in _chunk([_delta(0, " indeed")]).items() if k != "service_tier"},
                _chunk([_delta(0, None, "stop")], usage=None),
                AZURE_ANNOTATION, _usage_chunk(), "[DONE]"]


@pytest.mark.parametrize("asked", [False, True], ids=["injected", "asked"])
def test_stream_azure_filter_chunks_are_shown_and_named_by_the_real_chunks(
        fake_provider: Any, paid_ledger: LedgerView, asked: bool) -> None:
    """Chunks without id, model or usage (Azure's content filter) pass through, also after
    the finish chunk; the id, model and tier come from the last chunk with an id; the
    injected usage chunk alone is hidden."""
    client = _chunks_route(fake_provider, f"azure-{asked}", AZURE_STREAM)
    options = {"stream_options": {"include_usage": True}} if asked else {}
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True, **options))
    assert [c.id for c in chunks] == ["", "chatcmpl-inline", "chatcmpl-inline",
                                      "chatcmpl-inline", ""] + (["chatcmpl-inline"] if asked
                                                                else [])
    assert chunks[0].choices == [] and chunks[4].choices[0].finish_reason is None
    [row] = paid_ledger.calls()
    assert_priced(row, model=SERVED, streaming=True)
    assert row["response_id"] == "chatcmpl-inline"


async def test_stream_async_azure_filter_chunks(fake_provider: Any,
                                                paid_ledger: LedgerView) -> None:
    client = _chunks_route(fake_provider, "azure-async", AZURE_STREAM, asynchronous=True)
    with trace():
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True)
        chunks = [c async for c in stream]
    assert len(chunks) == 5 and all(c.usage is None for c in chunks)
    [row] = paid_ledger.calls()
    assert_priced(row, model=SERVED, streaming=True)
    assert row["response_id"] == "chatcmpl-inline"


N2_STREAM = [_chunk([_delta(0, "a"), _delta(1, "b")]), _chunk([_delta(1, "c")]),
             _chunk([_delta(1, None, "stop")]), _chunk([_delta(0, "d")]),
             _chunk([_delta(0, None, "length")])]


@pytest.mark.parametrize(("tail", "status", "reason"), [
    ([_usage_chunk(), "[DONE]"], "priced", None),
    (["[DONE]"], "usage_unknown", "not_reported"),
    ([], "usage_unknown", "not_reported")], ids=["usage", "no-usage", "no-done"])
def test_stream_with_two_choices(fake_provider: Any, paid_ledger: LedgerView,
                                 tail: list[Any], status: str, reason: str | None) -> None:
    """n=2: a finish_reason on any choice of any chunk marks the response complete."""
    client = _chunks_route(fake_provider, f"n2-{len(tail)}", N2_STREAM + tail)
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True, n=2))
    assert len(chunks) == len(N2_STREAM)
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == (status, reason)
    assert row["response_id"] == "chatcmpl-inline" and row["model"] == SERVED
    if status == "priced":
        assert_priced(row, model=SERVED, streaming=True)


def test_stream_cut_before_any_finish_reason(fake_provider: Any,
                                             paid_ledger: LedgerView) -> None:
    client = _chunks_route(fake_provider, "n2-cut", N2_STREAM[:2])
    with trace():
        assert len(list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                        stream=True))) == 2
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["response_id"] == "chatcmpl-inline"


def test_stream_cut_while_a_choice_is_still_going(fake_provider: Any,
                                                 paid_ledger: LedgerView) -> None:
    """n=2: choice 1 finished, choice 0 had more to say when the stream ended: cut short."""
    client = _chunks_route(fake_provider, "n2-half", N2_STREAM[:4])
    with trace():
        assert len(list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                        stream=True, n=2))) == 4
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["response_id"] == "chatcmpl-inline" and row["model"] == SERVED


def test_stream_azure_annotation_after_the_finish_chunk_without_usage(
        fake_provider: Any, paid_ledger: LedgerView) -> None:
    """A content-filter chunk (no id) after the finish chunk does not make a complete
    response look cut."""
    client = _chunks_route(fake_provider, "azure-no-usage",
                           [AZURE_FILTER, _chunk([_delta(0, "Yes")]),
                            _chunk([_delta(0, None, "stop")]), AZURE_ANNOTATION, "[DONE]"])
    with trace():
        assert len(list(client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True,
            stream_options={"include_usage": False}))) == 4
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")
    assert row["response_id"] == "chatcmpl-inline" and row["model"] == SERVED


def test_stream_chunks_without_id_or_choices(fake_provider: Any,
                                            paid_ledger: LedgerView) -> None:
    """Chunks sent without an id or choices (the SDK reads them as None) are shown as they
    are and never name the call; a usage chunk without choices is still the hidden one."""
    no_id = {k: v for k, v in _chunk([_delta(0, "a")]).items() if k != "id"}
    no_choices = {k: v for k, v in _chunk([]).items() if k != "choices"}
    usage_without_choices = {k: v for k, v in _usage_chunk().items() if k != "choices"}
    client = _chunks_route(fake_provider, "missing",
                           [no_id, no_choices, _chunk([_delta(0, "b", "stop")]),
                            usage_without_choices, "[DONE]"])
    with trace():
        chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                      stream=True))
    assert [c.id for c in chunks] == [None, "chatcmpl-inline", "chatcmpl-inline"]
    [row] = paid_ledger.calls()
    assert_priced(row, model=SERVED, streaming=True)
    assert row["response_id"] == "chatcmpl-inline"


@pytest.mark.parametrize("hide", [False, True], ids=["shown", "hidden"])
def test_stream_of_plain_dicts_is_read_field_by_field(fake_provider: Any,
                                                      paid_ledger: LedgerView,
                                                      hide: bool) -> None:
    """Items that are not the SDK's chunk objects (here an ``openai.Stream`` of dicts, from
    the SDK's low-level ``post``) are read field by field: the usage, the names and the
    hidden usage chunk come out as for chunks."""
    import openai as sdk

    import paid_hooks
    from paid_hooks_openai._streams import ChatChunks, wrap_stream

    _chunks_route(fake_provider, f"dicts-{hide}",
                  [_chunk([_delta(0, "a")]), _chunk([_delta(0, None, "stop")]),
                   _usage_chunk(), "[DONE]"])
    sdk_client = OpenAI(base_url=f"{fake_provider.url}/dicts-{hide}", api_key=API_KEY,
                        max_retries=0)
    with trace():
        raw = sdk_client.post("/chat/completions", body={"model": MODEL, "stream": True},
                              cast_to=dict[str, Any], stream=True,
                              stream_cls=sdk.Stream[dict[str, Any]])
        handle = paid_hooks.start_call(provider="openai", operation="chat",
                                       request_model=MODEL, streaming=True,
                                       captured_by="openai")
        items = list(wrap_stream(raw, handle, ChatChunks(hide)))
    assert all(type(item) is dict for item in items)
    assert len(items) == (2 if hide else 3)
    [row] = paid_ledger.calls()
    assert_priced(row, model=SERVED, streaming=True)
    assert row["response_id"] == "chatcmpl-inline"


def test_stream_error_after_the_usage_chunk_keeps_the_usage(
        fake_provider: Any, paid_ledger: LedgerView) -> None:
    client = _chunks_route(fake_provider, "usage-then-error",
                           [_chunk([_delta(0, "ok", "stop")]), _usage_chunk(), "error"])
    received = []
    with trace(), pytest.raises(openai.APIError, match="overloaded mid-stream"):
        for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                    stream=True):
            received.append(chunk)
    assert len(received) == 1  # the usage chunk was hidden
    [row] = paid_ledger.calls()
    assert_priced(row, model=SERVED, streaming=True)


@pytest.mark.parametrize("how", ["close", "collect"])
def test_stream_left_after_the_usage_chunk_is_priced(fake_provider: Any,
                                                     paid_ledger: LedgerView,
                                                     how: str) -> None:
    client = _chunks_route(fake_provider, f"usage-then-{how}",
                           [_chunk([_delta(0, "ok", "stop")]), _usage_chunk(),
                            _chunk([_delta(0, "late")]), "[DONE]"])
    with trace():
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                stream=True, stream_options={
                                                    "include_usage": True})
        assert next(stream).choices and next(stream).usage is not None
        if how == "close":
            stream.close()
        else:
            del stream
        [row] = paid_ledger.calls()  # at once: no garbage collection needed
    assert_priced(row, model=SERVED, streaming=True)


async def test_stream_async_collected_unread_is_recorded_at_once(
        aclient: PaidAsyncOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE))
    with trace():
        stream = await aclient.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                       stream=True)
        del stream
        [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_wrapper_sees_a_method_patched_on_the_class_after_wrapping(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded method is kept between calls, but not past a change of the SDK's."""
    from openai.resources.chat.completions import Completions

    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    seen: list[str] = []
    original = Completions.create

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append("patched")
        return original(self, *args, **kwargs)

    with trace():
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        monkeypatch.setattr(Completions, "create", patched)
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        monkeypatch.undo()
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert seen == ["patched"]
    rows = paid_ledger.calls()
    assert len(rows) == 3
    for row in rows:
        assert_priced(row)


def test_stream_runs_few_plugin_functions(client: PaidOpenAI, fake_provider: Any,
                                          paid_ledger: LedgerView) -> None:
    """Regression guard (no timing): a chat stream read to its end runs each of these
    plugin functions once on the caller's thread (the loop once per item), and no other
    (its usage is read on the pipeline worker)."""
    import sys

    fake_provider.queue(FakeReply(text=TEXT, usage=USAGE), FakeReply(text=TEXT, usage=USAGE))
    calls: dict[str, int] = {}

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event == "call" and "paid_hooks_openai" in code.co_filename:
            calls[code.co_name] = calls.get(code.co_name, 0) + 1

    with trace():
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
            pass  # warm-up: caches filled
        sys.setprofile(profile)
        try:
            chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                          stream=True))
        finally:
            sys.setprofile(None)
    assert calls.pop("_chat_sync") == len(chunks) + 1  # once per item, and to the end
    assert calls == {"get": 3, "method": 1, "record_sync": 1, "_prepare": 1,
                     "prepare_request": 1, "_raw_mode": 1, "_injection_enabled": 1,
                     "_record_result": 1, "__init__": 1, "wrap_stream": 1,
                     "__iter__": 1, "response_closed": 1, "settle": 1, "__del__": 1}
    assert len(paid_ledger.calls()) == 2
