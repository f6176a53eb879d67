"""The httpx/httpx2 hook driven through the REAL openai and anthropic SDKs (fake server).

Every test asserts exact tokens and exact cost (computed independently with genai-prices)
on the ledger rows, and that the caller sees exactly what it would see without the hook.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import genai_prices
import httpx
import httpx2
import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import paid_hooks
import paid_hooks_httpx
from paid_hooks.attributes import PAID_CAPTURED_BY
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, temporary_ledger
from paid_hooks.testing.fake.server import FakeRequest, FakeResponse, sse_event, sse_response
from paid_hooks_anthropic import PaidAnthropic, PaidAsyncAnthropic
from paid_hooks_httpx import instrument_client, uninstrument_client
from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI

OPENAI_KEY = "sk-httpx-test-SECRET-0123456789"
ANTHROPIC_KEY = "sk-ant-httpx-SECRET9"
GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Summarise the ticket."}]
MODULES = [httpx, httpx2]
MODULE_IDS = ["httpx", "httpx2"]


def expected_cost(model: str, provider_id: str, **usage: int) -> Decimal:
    return genai_prices.calc_price(genai_prices.Usage(**usage), model,
                                   provider_id=provider_id).total_price


@pytest.fixture(autouse=True)
def _no_process_wide_hooks() -> Iterator[None]:
    yield
    paid_hooks.uninstrument("httpx", "openai", "anthropic")


def openai_client(fake: FakeProviderServer, mod: Any = httpx, *, hook: bool = True,
                  base_url: str | None = None, **kwargs: Any) -> openai.OpenAI:
    http_client = mod.Client()
    if hook:
        instrument_client(http_client)
    return openai.OpenAI(base_url=base_url or fake.openai_url, api_key=OPENAI_KEY,
                         http_client=http_client, max_retries=0, **kwargs)


def async_openai_client(fake: FakeProviderServer, mod: Any = httpx, *,
                        hook: bool = True) -> openai.AsyncOpenAI:
    http_client = mod.AsyncClient()
    if hook:
        instrument_client(http_client)
    return openai.AsyncOpenAI(base_url=fake.openai_url, api_key=OPENAI_KEY,
                              http_client=http_client, max_retries=0)


def anthropic_client(fake: FakeProviderServer, *, hook: bool = True) -> anthropic.Anthropic:
    http_client = httpx2.Client()
    if hook:
        instrument_client(http_client)
    return anthropic.Anthropic(base_url=fake.anthropic_url, api_key=ANTHROPIC_KEY,
                               http_client=http_client, max_retries=0)


def async_anthropic_client(fake: FakeProviderServer, *,
                           hook: bool = True) -> anthropic.AsyncAnthropic:
    http_client = httpx2.AsyncClient()
    if hook:
        instrument_client(http_client)
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_url, api_key=ANTHROPIC_KEY,
                                    http_client=http_client, max_retries=0)


def assert_openai_row(row: dict[str, Any], usage: FakeUsage, *, streaming: bool,
                      captured_by: str = "httpx") -> None:
    assert row["provider"] == "openai"
    assert row["operation"] == "chat"
    assert row["model"] == GPT
    assert row["captured_by"] == captured_by
    assert row["streaming"] == int(streaming)
    assert row["cost_status"] == "priced"
    assert row["input_tokens"] == usage.input_tokens
    assert row["output_tokens"] == usage.output_tokens
    assert row["cache_read_tokens"] == usage.cache_read_tokens
    assert row["reasoning_tokens"] == usage.reasoning_tokens
    assert row["response_id"].startswith("chatcmpl-")
    assert Decimal(row["cost_usd"]) == expected_cost(
        GPT, "openai", input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        output_reasoning_tokens=usage.reasoning_tokens)


def assert_anthropic_row(row: dict[str, Any], usage: FakeUsage, *, streaming: bool) -> None:
    assert row["provider"] == "anthropic"
    assert row["model"] == CLAUDE
    assert row["captured_by"] == "httpx"
    assert row["streaming"] == int(streaming)
    assert row["cost_status"] == "priced"
    assert row["input_tokens"] == usage.input_tokens  # canonical: cache reads/writes included
    assert row["output_tokens"] == usage.output_tokens
    assert row["cache_read_tokens"] == usage.cache_read_tokens
    assert row["cache_write_tokens"] == usage.cache_write_tokens
    assert json.loads(row["usage_json"])["cache_write_1h_tokens"] == usage.cache_write_1h_tokens
    assert row["response_id"].startswith("msg_")
    assert Decimal(row["cost_usd"]) == expected_cost(
        CLAUDE, "anthropic", input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens, cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cache_write_5m_tokens=usage.cache_write_tokens - usage.cache_write_1h_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens)


USAGE = FakeUsage(1200, 300, cache_read_tokens=200, reasoning_tokens=40)
CLAUDE_USAGE = FakeUsage(2000, 150, cache_read_tokens=1200, cache_write_tokens=300,
                         cache_write_1h_tokens=100)
LONG_TEXT = "word " * 40_000
"""A stream of several MB: a caller that stops after one event cannot have read its tail
(httpcore reads at most 64 KiB at a time), so the usage at the end was never seen."""


# -- OpenAI SDK over httpx and httpx2 -------------------------------------------------------


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_openai_chat_json(paid_ledger, fake_provider, mod, gzip):
    client = openai_client(fake_provider, mod)
    fake_provider.queue(FakeReply(usage=USAGE, gzip=gzip))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        reply = client.chat.completions.create(model=GPT, messages=MESSAGES)
        paid_hooks.signal("ticket_summarised", enable_cost_tracing=True)
    assert reply.usage.prompt_tokens == 1200
    [row] = paid_ledger.calls()
    assert_openai_row(row, USAGE, streaming=False)
    assert row["response_id"] == reply.id
    assert row["external_customer_id"] == "acme"
    assert row["service_tier"] == "default"
    [sig] = paid_ledger.signals()
    assert sig["ai_calls"] == 1


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_openai_chat_stream(paid_ledger, fake_provider, mod, gzip):
    client = openai_client(fake_provider, mod)
    fake_provider.queue(FakeReply(usage=USAGE, gzip=gzip))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        stream = client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True})
        chunks = list(stream)
    assert chunks[-1].usage.completion_tokens == 300
    [row] = paid_ledger.calls()
    assert_openai_row(row, USAGE, streaming=True)
    assert row["response_id"] == chunks[0].id


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
async def test_openai_chat_async_json_and_stream(paid_ledger, fake_provider, mod, gzip):
    client = async_openai_client(fake_provider, mod)
    fake_provider.queue(FakeReply(usage=USAGE, gzip=gzip), FakeReply(usage=USAGE, gzip=gzip))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        await client.chat.completions.create(model=GPT, messages=MESSAGES)
        stream = await client.chat.completions.create(
            model=GPT, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    rows = paid_ledger.calls()
    assert [r["streaming"] for r in rows] == [0, 1]
    for row in rows:
        assert_openai_row(row, USAGE, streaming=bool(row["streaming"]))
        assert row["external_customer_id"] == "acme"


async def test_async_hook_runs_in_the_callers_task(paid_ledger, fake_provider):
    """Concurrent tasks of different customers: each call is attributed to its own task."""
    client = async_openai_client(fake_provider, httpx)
    fake_provider.responder = lambda provider, body: FakeReply(usage=USAGE)

    async def handle(customer: str) -> None:
        async with paid_hooks.paid_tracing(customer, external_agent_id="support"):
            stream = await client.chat.completions.create(
                model=GPT, messages=MESSAGES, stream=True,
                stream_options={"include_usage": True})
            async for _ in stream:
                await asyncio.sleep(0)

    await asyncio.gather(*(handle(f"customer-{i}") for i in range(8)))
    rows = paid_ledger.calls()
    assert sorted(r["external_customer_id"] for r in rows) == sorted(
        f"customer-{i}" for i in range(8))
    assert len({r["trace_id"] for r in rows}) == 8


def test_openai_stream_without_include_usage_is_usage_unknown(paid_ledger, fake_provider):
    client = openai_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        list(client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "not_reported"
    assert row["model"] == GPT


@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_openai_stream_closed_early_is_usage_unknown(paid_ledger, fake_provider, mod):
    client = openai_client(fake_provider, mod)
    fake_provider.queue(FakeReply(usage=USAGE, text=LONG_TEXT))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        stream = client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True})
        first = next(iter(stream))
        stream.close()
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"
    assert row["input_tokens"] is None and row["cost_usd"] is None
    assert row["response_id"] == first.id


async def test_openai_async_stream_closed_early_is_usage_unknown(paid_ledger, fake_provider):
    client = async_openai_client(fake_provider, httpx2)
    fake_provider.queue(FakeReply(usage=USAGE, text=LONG_TEXT))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        stream = await client.chat.completions.create(
            model=GPT, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        async for _ in stream:
            break
        await stream.close()
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_stream_cut_by_the_server_is_usage_unknown(paid_ledger, fake_provider):
    client = openai_client(fake_provider, httpx2)
    fake_provider.queue(FakeReply(usage=USAGE, cut_stream_after=2))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        chunks = list(client.chat.completions.create(
            model=GPT, messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert len(chunks) == 2
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_openai_4xx_is_no_charge_and_the_sdk_error_is_unchanged(paid_ledger, fake_provider,
                                                                 mod):
    errors = []
    for hook in (False, True):
        client = openai_client(fake_provider, mod, hook=hook)
        fake_provider.queue(FakeReply(status=400, error_message="bad model"))
        with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
                pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=GPT, messages=MESSAGES)
        errors.append((type(info.value), info.value.status_code, info.value.body,
                       str(info.value)))
    assert errors[0] == errors[1]
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["call_status"] == "error"
    assert row["error_type"] == "http_400"
    assert row["input_tokens"] is None


async def test_openai_async_stream_4xx_is_no_charge(paid_ledger, fake_provider):
    client = async_openai_client(fake_provider, httpx)
    fake_provider.queue(FakeReply(status=429, error_message="slow down"))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True)
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["error_type"]) == ("no_charge", "http_429")


# -- Anthropic SDK over httpx2 --------------------------------------------------------------


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_anthropic_messages_json_and_stream(paid_ledger, fake_provider, gzip):
    client = anthropic_client(fake_provider)
    fake_provider.queue(FakeReply(usage=CLAUDE_USAGE, gzip=gzip),
                        FakeReply(usage=CLAUDE_USAGE, gzip=gzip))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        message = client.messages.create(model=CLAUDE, max_tokens=512, messages=MESSAGES)
        with client.messages.stream(model=CLAUDE, max_tokens=512, messages=MESSAGES) as stream:
            final = stream.get_final_message()
    assert final.usage.output_tokens == 150
    json_row, stream_row = paid_ledger.calls()
    assert_anthropic_row(json_row, CLAUDE_USAGE, streaming=False)
    assert json_row["response_id"] == message.id
    assert_anthropic_row(stream_row, CLAUDE_USAGE, streaming=True)
    assert stream_row["response_id"] == final.id


async def test_anthropic_async_json_and_stream(paid_ledger, fake_provider):
    client = async_anthropic_client(fake_provider)
    fake_provider.queue(FakeReply(usage=CLAUDE_USAGE), FakeReply(usage=CLAUDE_USAGE, gzip=True))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        await client.messages.create(model=CLAUDE, max_tokens=512, messages=MESSAGES)
        stream = await client.messages.create(model=CLAUDE, max_tokens=512, messages=MESSAGES,
                                              stream=True)
        events = [event.type async for event in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    rows = paid_ledger.calls()
    assert [r["streaming"] for r in rows] == [0, 1]
    for row in rows:
        assert_anthropic_row(row, CLAUDE_USAGE, streaming=bool(row["streaming"]))


def test_anthropic_stream_closed_early_is_usage_unknown(paid_ledger, fake_provider):
    """message_start already carried input usage: still unknown, never a partial price."""
    client = anthropic_client(fake_provider)
    fake_provider.queue(FakeReply(usage=CLAUDE_USAGE, text=LONG_TEXT))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        stream = client.messages.create(model=CLAUDE, max_tokens=512, messages=MESSAGES,
                                        stream=True)
        for event in stream:
            if event.type == "content_block_delta":
                break
        stream.close()
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["response_id"].startswith("msg_")


def test_anthropic_error_event_mid_stream_is_usage_unknown(paid_ledger, fake_provider):
    client = anthropic_client(fake_provider)
    fake_provider.queue(FakeReply(usage=CLAUDE_USAGE, extra={"stream_error": "after_start"}))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(anthropic.APIStatusError):
        for _ in client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES,
                                        stream=True):
            pass
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_error")
    assert row["input_tokens"] is None


def test_anthropic_4xx_is_no_charge_and_the_sdk_error_is_unchanged(paid_ledger, fake_provider):
    errors = []
    for hook in (False, True):
        client = anthropic_client(fake_provider, hook=hook)
        fake_provider.queue(FakeReply(status=401, error_message="invalid x-api-key"))
        with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
                pytest.raises(anthropic.AuthenticationError) as info:
            client.messages.create(model=CLAUDE, max_tokens=16, messages=MESSAGES)
        errors.append((info.value.status_code, info.value.body, str(info.value)))
    assert errors[0] == errors[1]
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["error_type"]) == ("no_charge", "http_401")


# -- the caller's bytes are untouched, and never buffered -----------------------------------

FIXED_USAGE = {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40,
               "prompt_tokens_details": {"cached_tokens": 0}}


def _fixed_events() -> list[bytes]:
    base = {"id": "chatcmpl-fixed", "object": "chat.completion.chunk", "created": 1700000000,
            "model": GPT, "system_fingerprint": "fp_fixed"}
    events = [sse_event({**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "},
                                              "finish_reason": None}], "usage": None})
              for i in range(40)]
    events.append(sse_event({**base, "choices": [{"index": 0, "delta": {},
                                                  "finish_reason": "stop"}], "usage": None}))
    events.append(sse_event({**base, "choices": [], "usage": FIXED_USAGE}))
    events.append(sse_event("[DONE]"))
    return events


def _fixed_route(server: Any, request: FakeRequest, match: Any) -> FakeResponse:
    return sse_response(iter(_fixed_events()), gzip_body=match.group(1) == "gzip")


_gate = threading.Event()
_gate_result: list[bool] = []


def _gated_route(server: Any, request: FakeRequest, match: Any) -> FakeResponse:
    def events() -> Iterator[bytes]:
        items = _fixed_events()
        yield items[0]
        _gate_result.append(_gate.wait(timeout=10))  # the caller must see event 0 first
        yield from items[1:]

    return sse_response(events(), gzip_body=match.group(1) == "gzip")


@pytest.fixture
def fixed_routes(fake_provider: FakeProviderServer) -> FakeProviderServer:
    if not getattr(fake_provider, "_httpx_fixed_routes", False):
        fake_provider.route("POST", r"/fixed/(plain|gzip)/chat/completions", _fixed_route)
        fake_provider.route("POST", r"/gated/(plain|gzip)/chat/completions", _gated_route)
        fake_provider._httpx_fixed_routes = True  # type: ignore[attr-defined]
    return fake_provider


def _raw_read(client: Any, url: str) -> tuple[bytes, bytes, list[str]]:
    """Raw bytes, decoded body and lines of three calls, each in its own trace."""
    body = {"model": GPT, "messages": MESSAGES, "stream": True}
    with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            client.stream("POST", url, json=body) as response:
        raw = b"".join(response.iter_raw())
    with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            client.stream("POST", url, json=body) as response:
        lines = list(response.iter_lines())
    with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            client.stream("POST", url, json=body) as response:
        decoded = response.read()
    return raw, decoded, lines


@pytest.mark.parametrize("encoding", ["plain", "gzip"])
@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_caller_bytes_and_events_are_identical_with_and_without_the_hook(
        paid_ledger, fixed_routes, mod, encoding):
    url = f"{fixed_routes.url}/fixed/{encoding}/chat/completions"
    with mod.Client() as plain, instrument_client(mod.Client()) as hooked:
        expected = _raw_read(plain, url)
        assert paid_ledger.calls() == []
        seen = _raw_read(hooked, url)
    assert seen == expected
    assert expected[1].startswith(b"data: {") and expected[1].endswith(b"data: [DONE]\n\n")
    if encoding == "gzip":
        assert expected[0][:2] == b"\x1f\x8b"  # the raw bytes really were gzip
    rows = paid_ledger.calls()
    assert len(rows) == 3
    for row in rows:
        assert (row["input_tokens"], row["output_tokens"]) == (31, 9)
        assert Decimal(row["cost_usd"]) == expected_cost(GPT, "openai", input_tokens=31,
                                                         output_tokens=9, cache_read_tokens=0)

    sdk_chunks = []
    for http_client in (mod.Client(), instrument_client(mod.Client())):
        client = openai.OpenAI(base_url=f"{fixed_routes.url}/fixed/{encoding}",
                               api_key=OPENAI_KEY, http_client=http_client)
        stream = client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True)
        sdk_chunks.append([chunk.model_dump() for chunk in stream])
    assert sdk_chunks[0] == sdk_chunks[1]
    assert len(sdk_chunks[0]) == 42


@pytest.mark.parametrize("encoding", ["plain", "gzip"])
def test_the_stream_reaches_the_caller_chunk_by_chunk(paid_ledger, fixed_routes, encoding):
    """The server holds event 1 back until the caller has seen event 0 through the tee."""
    _gate.clear()
    _gate_result.clear()
    url = f"{fixed_routes.url}/gated/{encoding}/chat/completions"
    with instrument_client(httpx.Client()) as client, \
            paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            client.stream("POST", url, json={"model": GPT, "stream": True}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: {")
        _gate.set()
        rest = list(lines)
    assert _gate_result == [True]
    assert [line for line in rest if line][-1] == "data: [DONE]"
    [row] = paid_ledger.calls()
    assert (row["input_tokens"], row["output_tokens"], row["cost_status"]) == (31, 9, "priced")


# -- exactly once ---------------------------------------------------------------------------


@pytest.fixture
def span_ledger(tmp_path: Path) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    """A ledger plus every AI-call span, counted BEFORE the ledger's response-id de-dupe."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with temporary_ledger(tmp_path, tracer_provider=provider) as view:
        yield view, exporter


def recorders(exporter: InMemorySpanExporter) -> list[str]:
    return sorted(span.attributes[PAID_CAPTURED_BY] for span in exporter.get_finished_spans()
                  if PAID_CAPTURED_BY in (span.attributes or {}))


def test_exactly_once_with_the_paid_openai_wrapper(span_ledger, fake_provider):
    ledger, exporter = span_ledger
    client = PaidOpenAI(openai_client(fake_provider, httpx))
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        client.chat.completions.create(model=GPT, messages=MESSAGES)
        list(client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}))
    rows = ledger.calls()
    assert recorders(exporter) == ["openai", "openai"]  # the hook stood down twice
    assert [(r["captured_by"], r["streaming"]) for r in rows] == [("openai", 0), ("openai", 1)]
    for row in rows:
        assert_openai_row(row, USAGE, streaming=bool(row["streaming"]), captured_by="openai")


async def test_exactly_once_with_the_async_wrapper(span_ledger, fake_provider):
    ledger, exporter = span_ledger
    client = PaidAsyncOpenAI(async_openai_client(fake_provider, httpx2))
    fake_provider.queue(FakeReply(usage=USAGE))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        await client.chat.completions.create(model=GPT, messages=MESSAGES)
    [row] = ledger.calls()
    assert recorders(exporter) == ["openai"]
    assert_openai_row(row, USAGE, streaming=False, captured_by="openai")


@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_exactly_once_with_openai_auto_instrumentation(span_ledger, fake_provider, mod):
    ledger, exporter = span_ledger
    assert "openai" in paid_hooks.instrument("openai")
    client = openai_client(fake_provider, mod)
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        client.chat.completions.create(model=GPT, messages=MESSAGES)
    [row] = ledger.calls()
    assert recorders(exporter) == ["openai"]
    assert_openai_row(row, USAGE, streaming=False, captured_by="openai")


async def test_exactly_once_with_both_auto_instrumentations_async(span_ledger, fake_provider):
    ledger, exporter = span_ledger
    assert {"httpx", "openai"} <= set(paid_hooks.instrument("openai", "httpx"))
    client = openai.AsyncOpenAI(base_url=fake_provider.openai_url, api_key=OPENAI_KEY,
                                max_retries=0)  # its own httpx client, hooked at creation
    assert len(client._client.event_hooks["request"]) == 1
    fake_provider.queue(FakeReply(usage=USAGE))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        await client.chat.completions.create(model=GPT, messages=MESSAGES)
    [row] = ledger.calls()
    assert recorders(exporter) == ["openai"]
    assert_openai_row(row, USAGE, streaming=False, captured_by="openai")


@pytest.mark.parametrize("mode", ["wrapper", "auto"])
def test_exactly_once_with_the_anthropic_plugin(span_ledger, fake_provider, mode):
    ledger, exporter = span_ledger
    client: Any = anthropic_client(fake_provider)
    if mode == "wrapper":
        client = PaidAnthropic(client)
    else:
        assert "anthropic" in paid_hooks.instrument("anthropic")
    fake_provider.queue(FakeReply(usage=CLAUDE_USAGE), FakeReply(usage=CLAUDE_USAGE))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)
        with client.messages.stream(model=CLAUDE, max_tokens=64, messages=MESSAGES) as s:
            s.until_done()
    rows = ledger.calls()
    assert recorders(exporter) == ["anthropic", "anthropic"]
    assert [(r["captured_by"], r["streaming"]) for r in rows] == [("anthropic", 0),
                                                                  ("anthropic", 1)]


async def test_exactly_once_with_the_async_anthropic_wrapper(span_ledger, fake_provider):
    ledger, exporter = span_ledger
    client = PaidAsyncAnthropic(async_anthropic_client(fake_provider))
    fake_provider.queue(FakeReply(usage=CLAUDE_USAGE), FakeReply(usage=CLAUDE_USAGE))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        await client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)
        stream = await client.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES,
                                              stream=True)
        async for _ in stream:
            pass
    assert len(ledger.calls()) == 2  # flushes the pipeline first
    assert recorders(exporter) == ["anthropic", "anthropic"]


def test_the_hook_records_without_another_layer(span_ledger, fake_provider):
    """Control for the exactly-once tests: the same call, hook only, IS recorded."""
    ledger, exporter = span_ledger
    client = openai_client(fake_provider, httpx)
    claude = async_anthropic_client(fake_provider)
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=CLAUDE_USAGE))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        client.chat.completions.create(model=GPT, messages=MESSAGES)
        asyncio.run(claude.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES))
    assert len(ledger.calls()) == 2  # flushes the pipeline first
    assert recorders(exporter) == ["httpx", "httpx"]


def test_opentelemetry_suppression_is_honoured(paid_ledger, fake_provider):
    client = openai_client(fake_provider, httpx)
    fake_provider.queue(FakeReply(usage=USAGE))
    token = otel_context.attach(
        otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        with paid_hooks.paid_tracing("acme", external_agent_id="support"):
            client.chat.completions.create(model=GPT, messages=MESSAGES)
    finally:
        otel_context.detach(token)
    assert paid_ledger.calls() == []


# -- process-wide instrumentation, idempotence, transports ----------------------------------


def test_instrument_hooks_new_clients_and_uninstrument_restores(paid_ledger, fake_provider):
    originals = {cls: cls.__dict__["__init__"]
                 for cls in (httpx.Client, httpx.AsyncClient, httpx2.Client, httpx2.AsyncClient)}
    before = httpx.Client()
    explicit = instrument_client(httpx2.Client())
    paid_hooks.instrument("httpx")
    paid_hooks.instrument("httpx")  # idempotent
    auto_sync, auto_async = httpx.Client(), httpx2.AsyncClient()
    for client in (auto_sync, auto_async, explicit):
        assert len(client.event_hooks["request"]) == 1
    assert before.event_hooks == {"request": [], "response": []}

    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        openai.OpenAI(base_url=fake_provider.openai_url, api_key=OPENAI_KEY).chat \
            .completions.create(model=GPT, messages=MESSAGES)
        openai.OpenAI(base_url=fake_provider.openai_url, api_key=OPENAI_KEY,
                      http_client=before).chat.completions.create(model=GPT, messages=MESSAGES)
    [row] = paid_ledger.calls()  # the pre-existing client is not hooked
    assert_openai_row(row, USAGE, streaming=False)

    paid_hooks.uninstrument("httpx")
    paid_hooks.uninstrument("httpx")  # idempotent
    for cls, init in originals.items():
        assert cls.__dict__["__init__"] is init
    assert auto_sync.event_hooks == {"request": [], "response": []}
    assert auto_async.event_hooks == {"request": [], "response": []}
    assert len(explicit.event_hooks["request"]) == 1  # hooked explicitly: stays hooked
    assert httpx.Client().event_hooks == {"request": [], "response": []}


def test_instrument_client_is_idempotent_and_keeps_other_hooks(paid_ledger, fake_provider):
    seen: list[str] = []

    def user_request_hook(request: Any) -> None:
        seen.append("request")

    def user_response_hook(response: Any) -> None:
        seen.append(f"response:{response.read()[:1]!r}")  # a hook that reads the body

    http_client = httpx.Client(event_hooks={"request": [user_request_hook],
                                            "response": [user_response_hook]})
    assert instrument_client(http_client) is http_client
    assert instrument_client(http_client) is http_client
    assert len(http_client.event_hooks["request"]) == 2
    assert len(http_client.event_hooks["response"]) == 2
    client = openai.OpenAI(base_url=fake_provider.openai_url, api_key=OPENAI_KEY,
                           http_client=http_client)
    fake_provider.queue(FakeReply(usage=USAGE, gzip=True))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        client.chat.completions.create(model=GPT, messages=MESSAGES)
    assert seen == ["request", "response:b'{'"]
    [row] = paid_ledger.calls()
    assert_openai_row(row, USAGE, streaming=False)

    uninstrument_client(http_client)
    assert http_client.event_hooks == {"request": [user_request_hook],
                                       "response": [user_response_hook]}
    with pytest.raises(TypeError):
        instrument_client(object())


def test_transports_record_and_stand_down_under_a_hook(paid_ledger, fake_provider):
    sync_transport = paid_hooks_httpx.PaidTransport()
    client = openai.OpenAI(base_url=fake_provider.openai_url, api_key=OPENAI_KEY,
                           http_client=httpx.Client(transport=sync_transport))
    both = openai.OpenAI(base_url=fake_provider.openai_url, api_key=OPENAI_KEY,
                         http_client=instrument_client(
                             httpx.Client(transport=paid_hooks_httpx.PaidTransport())))
    claude = anthropic.Anthropic(
        base_url=fake_provider.anthropic_url, api_key=ANTHROPIC_KEY,
        http_client=httpx2.Client(transport=paid_hooks_httpx.PaidHttpx2Transport()))
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE, gzip=True),
                        FakeReply(usage=CLAUDE_USAGE, gzip=True))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        list(client.chat.completions.create(model=GPT, messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True}))
        both.chat.completions.create(model=GPT, messages=MESSAGES)
        with claude.messages.stream(model=CLAUDE, max_tokens=64, messages=MESSAGES) as s:
            s.until_done()
    openai_stream, openai_json, claude_row = paid_ledger.calls()
    assert_openai_row(openai_stream, USAGE, streaming=True)
    assert_openai_row(openai_json, USAGE, streaming=False)
    assert_anthropic_row(claude_row, CLAUDE_USAGE, streaming=True)
    assert isinstance(sync_transport, httpx.BaseTransport)
    assert paid_hooks_httpx.transport_classes(httpx2)[0] is paid_hooks_httpx.PaidHttpx2Transport


async def test_async_transport_and_connect_error(paid_ledger, fake_provider):
    client = openai.AsyncOpenAI(
        base_url=fake_provider.openai_url, api_key=OPENAI_KEY, max_retries=0,
        http_client=httpx2.AsyncClient(transport=paid_hooks_httpx.PaidAsyncHttpx2Transport()))
    dead = openai.AsyncOpenAI(
        base_url="http://127.0.0.1:9/v1", api_key=OPENAI_KEY, max_retries=0,
        http_client=httpx.AsyncClient(transport=paid_hooks_httpx.PaidAsyncTransport()))
    fake_provider.queue(FakeReply(usage=USAGE))
    async with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        await client.chat.completions.create(model=GPT, messages=MESSAGES)
        with pytest.raises(openai.APIConnectionError):
            await dead.chat.completions.create(model=GPT, messages=MESSAGES)
    ok, failed = paid_ledger.calls()
    assert_openai_row(ok, USAGE, streaming=False)
    assert (failed["cost_status"], failed["call_status"]) == ("no_charge", "error")
    assert failed["error_type"] == "ConnectError"


# -- secrets --------------------------------------------------------------------------------


def test_no_api_key_or_authorization_reaches_the_ledger(paid_ledger, fake_provider):
    oa = openai_client(fake_provider, httpx)
    claude = anthropic_client(fake_provider)
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE),
                        FakeReply(usage=CLAUDE_USAGE), FakeReply(status=401))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        oa.chat.completions.create(model=GPT, messages=MESSAGES)
        list(oa.chat.completions.create(model=GPT, messages=MESSAGES, stream=True,
                                        stream_options={"include_usage": True}))
        claude.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)
        with pytest.raises(anthropic.AuthenticationError):
            claude.messages.create(model=CLAUDE, max_tokens=64, messages=MESSAGES)
        paid_hooks.signal("done", enable_cost_tracing=True)
    headers = [e.request_headers for e in fake_provider.exchanges]
    assert headers[0]["authorization"] == f"Bearer {OPENAI_KEY}"  # the key was really sent
    assert ANTHROPIC_KEY in " ".join(headers[2].values())
    dump = json.dumps([paid_ledger.calls(), paid_ledger.signals()], default=str)
    assert len(paid_ledger.calls()) == 4
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, "Bearer", "SECRET", "x-api-key"):
        assert secret not in dump


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_streams_over_the_whole_limit_are_read_incrementally(paid_ledger, fake_provider,
                                                             monkeypatch, gzip):
    # past WHOLE_LIMIT (1 MiB; 100 bytes here) the body is read as it arrives, not at its end
    from paid_hooks_httpx import _recorder

    monkeypatch.setattr(_recorder, "WHOLE_LIMIT", 100)
    client = openai_client(fake_provider, httpx)
    claude = anthropic_client(fake_provider)
    fake_provider.queue(FakeReply(usage=USAGE, gzip=gzip), FakeReply(usage=CLAUDE_USAGE,
                                                                     gzip=gzip))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        chunks = list(client.chat.completions.create(
            model=GPT, messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
        with claude.messages.stream(model=CLAUDE, max_tokens=512, messages=MESSAGES) as stream:
            final = stream.get_final_message()
    openai_row, claude_row = paid_ledger.calls()
    assert_openai_row(openai_row, USAGE, streaming=True)
    assert openai_row["response_id"] == chunks[0].id
    assert_anthropic_row(claude_row, CLAUDE_USAGE, streaming=True)
    assert claude_row["response_id"] == final.id
