"""Auto-instrumentation of the anthropic SDK (``paid_hooks.instrument("anthropic")``).

Also: the wrapper and the patches together record each call once, ``uninstrument``
restores the SDK exactly, and the SDK's own OpenTelemetry spans are never counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import genai_prices
import pytest
from anthropic import Anthropic, AsyncAnthropic
from anthropic.resources.beta.messages import messages as beta_messages
from anthropic.resources.messages import messages as messages_module
from anthropic.types import Message
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage, temporary_ledger
from paid_hooks_anthropic import PaidAnthropic, PaidAsyncAnthropic

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Draft a reply to this customer."}]
RESOURCE_CLASSES = (messages_module.Messages, messages_module.AsyncMessages,
                    beta_messages.Messages, beta_messages.AsyncMessages)
METHODS = ("create", "parse", "stream")


def expected_cost(u: FakeUsage) -> Decimal:
    fields: dict[str, Any] = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}
    if u.cache_read_tokens:
        fields["cache_read_tokens"] = u.cache_read_tokens
    if u.cache_write_tokens:
        fields["cache_write_tokens"] = u.cache_write_tokens
    if u.cache_write_1h_tokens:
        fields["cache_write_1h_tokens"] = u.cache_write_1h_tokens
    price = genai_prices.calc_price(genai_prices.Usage(**fields), MODEL, provider_id="anthropic")
    return Decimal(price.total_price)


def assert_priced(row: dict[str, Any], u: FakeUsage, *, streaming: bool) -> None:
    assert row["captured_by"] == "anthropic" and row["provider"] == "anthropic"
    assert row["cost_status"] == "priced", row["cost_reason"]
    assert (row["input_tokens"], row["output_tokens"]) == (u.input_tokens, u.output_tokens)
    assert row["cache_read_tokens"] == u.cache_read_tokens
    assert row["cache_write_tokens"] == u.cache_write_tokens
    assert row["streaming"] == int(streaming)
    assert Decimal(row["cost_usd"]) == expected_cost(u)


def _snapshot() -> dict[tuple[type, str], Any]:
    return {(cls, name): cls.__dict__[name] for cls in RESOURCE_CLASSES for name in METHODS}


ORIGINALS = _snapshot()


@pytest.fixture
def instrumented() -> Iterator[None]:
    assert "anthropic" in paid_hooks.instrument("anthropic")
    try:
        yield
    finally:
        paid_hooks.uninstrument("anthropic")
    assert _snapshot() == ORIGINALS


@pytest.fixture
def plain(fake_provider) -> Anthropic:
    return Anthropic(base_url=fake_provider.anthropic_url, api_key="test-key", max_retries=0)


@pytest.fixture
def aplain(fake_provider) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=fake_provider.anthropic_url, api_key="test-key",
                          max_retries=0)


def test_plain_client_is_recorded(paid_ledger, fake_provider, plain, instrumented):
    usages = [FakeUsage(1000, 100, cache_read_tokens=300),
              FakeUsage(1100, 110, cache_write_tokens=200, cache_write_1h_tokens=200),
              FakeUsage(1200, 120), FakeUsage(1300, 130, cache_read_tokens=100),
              FakeUsage(1400, 140)]
    fake_provider.queue(*(FakeReply(usage=u) for u in usages))
    with paid_tracing("acme", external_agent_id="support"):
        message = plain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        for _ in plain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                       stream=True):
            pass
        with plain.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            stream.get_final_text()
        plain.beta.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        with plain.beta.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            stream.until_done()
        signal("reply_drafted", enable_cost_tracing=True)

    assert type(message) is Message
    rows = {r["response_id"]: r for r in paid_ledger.calls()}
    assert len(rows) == 5
    for exchange, usage in zip(fake_provider.exchanges, usages, strict=True):
        assert_priced(rows[exchange.response_id], usage, streaming=exchange.streamed)
    [sig] = paid_ledger.signals()
    assert sig["ai_calls"] == 5
    assert Decimal(sig["cost_usd"]) == sum(expected_cost(u) for u in usages)


async def test_plain_async_client_is_recorded(paid_ledger, fake_provider, aplain, instrumented):
    usages = [FakeUsage(1000, 100), FakeUsage(1100, 110, cache_read_tokens=600),
              FakeUsage(1200, 120, cache_write_tokens=100), FakeUsage(1300, 130)]
    fake_provider.queue(*(FakeReply(usage=u) for u in usages))
    async with paid_tracing("acme", external_agent_id="support"):
        await aplain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        stream = await aplain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                              stream=True)
        async for _ in stream:
            pass
        async with aplain.messages.stream(model=MODEL, max_tokens=64,
                                          messages=MESSAGES) as helper:
            await helper.get_final_message()
        async with aplain.beta.messages.stream(model=MODEL, max_tokens=64,
                                               messages=MESSAGES) as helper:
            async for _ in helper.text_stream:
                pass
    rows = {r["response_id"]: r for r in paid_ledger.calls()}
    assert len(rows) == 4
    for exchange, usage in zip(fake_provider.exchanges, usages, strict=True):
        assert_priced(rows[exchange.response_id], usage, streaming=exchange.streamed)


def test_instrumented_stream_abandoned_and_error(paid_ledger, fake_provider, plain,
                                                 instrumented):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)), FakeReply(status=500))
    with paid_tracing("acme", external_agent_id="support"):
        with plain.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            next(iter(stream))
        with pytest.raises(anthropic.InternalServerError):
            plain.beta.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    rows = sorted(paid_ledger.calls(), key=lambda r: r["cost_status"])
    assert [(r["cost_status"], r["cost_reason"]) for r in rows] == [
        ("no_charge", "InternalServerError"), ("usage_unknown", "stream_closed_early")]


def test_raw_response_is_usage_unknown(paid_ledger, fake_provider, plain, instrumented):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_tracing("acme", external_agent_id="support"):
        raw = plain.messages.with_raw_response.create(model=MODEL, max_tokens=64,
                                                      messages=MESSAGES)
        assert raw.parse().usage.output_tokens == 100
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "raw_response")


@pytest.fixture
def app_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """An application TracerProvider that records every span, for paid-hooks to share.

    Counting our own call spans is stricter than counting ledger rows: the ledger keeps
    one row per response id, which would hide a call recorded twice (an OTLP export
    would not).
    """
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider, exporter
    finally:
        provider.shutdown()


def own_call_spans(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans()
            if s.instrumentation_scope.name == "paid_hooks" and s.name.startswith("chat ")]


def test_wrapper_and_instrumentation_together_record_once(tmp_path, fake_provider,
                                                          app_provider, instrumented):
    provider, exporter = app_provider
    client = PaidAnthropic(Anthropic(base_url=fake_provider.anthropic_url, api_key="k"))
    usages = [FakeUsage(1000, 100, cache_read_tokens=200), FakeUsage(1100, 110),
              FakeUsage(1200, 120, cache_write_tokens=300), FakeUsage(1300, 130)]
    fake_provider.queue(*(FakeReply(usage=u) for u in usages))
    with temporary_ledger(tmp_path, tracer_provider=provider) as paid_ledger, \
            paid_tracing("acme", external_agent_id="support"):
        client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        for _ in client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                        stream=True):
            pass
        with client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            stream.until_done()
        with client.beta.messages.stream(model=MODEL, max_tokens=64,
                                         messages=MESSAGES) as stream:
            stream.until_done()
        rows = paid_ledger.calls()
    assert len(own_call_spans(exporter)) == 4
    assert len(rows) == 4 == len(fake_provider.exchanges)
    by_id = {r["response_id"]: r for r in rows}
    for exchange, usage in zip(fake_provider.exchanges, usages, strict=True):
        assert_priced(by_id[exchange.response_id], usage, streaming=exchange.streamed)


async def test_async_wrapper_and_instrumentation_together_record_once(
        tmp_path, fake_provider, app_provider, instrumented):
    provider, exporter = app_provider
    client = PaidAsyncAnthropic(AsyncAnthropic(base_url=fake_provider.anthropic_url,
                                               api_key="k"))
    usages = [FakeUsage(1000, 100), FakeUsage(1100, 110), FakeUsage(1200, 120)]
    fake_provider.queue(*(FakeReply(usage=u) for u in usages))
    with temporary_ledger(tmp_path, tracer_provider=provider) as paid_ledger:
        await _three_async_calls(client)
        rows = paid_ledger.calls()
    assert len(own_call_spans(exporter)) == 3
    assert len(rows) == 3
    by_id = {r["response_id"]: r for r in rows}
    for exchange, usage in zip(fake_provider.exchanges, usages, strict=True):
        assert_priced(by_id[exchange.response_id], usage, streaming=exchange.streamed)


async def _three_async_calls(client: PaidAsyncAnthropic) -> None:
    async with paid_tracing("acme", external_agent_id="support"):
        await client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        async with client.messages.stream(model=MODEL, max_tokens=64,
                                          messages=MESSAGES) as stream:
            await stream.until_done()
        stream2 = await client.beta.messages.create(model=MODEL, max_tokens=64,
                                                    messages=MESSAGES, stream=True)
        async for _ in stream2:
            pass


def test_instrument_is_idempotent_and_uninstrument_restores_exactly(paid_ledger,
                                                                    fake_provider, plain):
    assert _snapshot() == ORIGINALS
    paid_hooks.instrument("anthropic")
    patched = _snapshot()
    assert all(patched[key] is not ORIGINALS[key] for key in ORIGINALS)
    assert all(patched[key].__wrapped__ is ORIGINALS[key] for key in ORIGINALS)
    paid_hooks.instrument("anthropic")
    assert _snapshot() == patched  # not wrapped twice
    paid_hooks.uninstrument("anthropic")
    assert _snapshot() == ORIGINALS
    paid_hooks.uninstrument("anthropic")  # idempotent, never raises
    assert _snapshot() == ORIGINALS

    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_tracing("acme", external_agent_id="support"):
        plain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert paid_ledger.calls() == []  # no longer recorded


def test_sdk_own_spans_are_never_counted(tmp_path, fake_provider, app_provider):
    """The SDK's telemetry goes to the provider paid-hooks uses, as it would to a global one.

    It is handed to both explicitly (``initialize_tracing(tracer_provider=)`` and the
    client's ``open_telemetry={"tracer_provider": ...}``): that is exactly what the SDK does
    with the global provider, without setting one (``set_tracer_provider`` works once per
    process and cannot be undone).
    """
    provider, exporter = app_provider
    usage = FakeUsage(1000, 100, cache_read_tokens=200, cache_write_tokens=300)
    fake_provider.queue(FakeReply(usage=usage), FakeReply(usage=usage))
    with temporary_ledger(tmp_path, tracer_provider=provider) as ledger:
        paid_hooks.instrument("anthropic")
        try:
            client = PaidAnthropic(Anthropic(base_url=fake_provider.anthropic_url,
                                             api_key="k",
                                             open_telemetry={"tracer_provider": provider}))
            with paid_tracing("acme", external_agent_id="support"):
                client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
                with client.messages.stream(model=MODEL, max_tokens=64,
                                            messages=MESSAGES) as stream:
                    stream.until_done()
                signal("reply_drafted", enable_cost_tracing=True)
            rows = ledger.calls()
            signals = ledger.signals()
        finally:
            paid_hooks.uninstrument("anthropic")

    sdk_spans = [s for s in exporter.get_finished_spans()
                 if s.instrumentation_scope.name == "com.anthropic.sdk.python"]
    # The SDK did emit its own GenAI spans, with usage, on the very provider the ledger uses ...
    assert [s.name for s in sdk_spans] == ["anthropic.messages.create"] * 2
    assert all(s.attributes["gen_ai.usage.input_tokens"] == 1000 for s in sdk_spans)
    assert all(s.attributes["gen_ai.usage.output_tokens"] == 100 for s in sdk_spans)
    # ... in the same trace as our records, and yet each call is exactly one ledger row.
    assert len(rows) == 2 == len(own_call_spans(exporter))
    assert {format(s.context.trace_id, "032x") for s in sdk_spans} == {rows[0]["trace_id"]}
    for row in rows:
        assert_priced(row, usage, streaming=bool(row["streaming"]))
    assert signals[0]["ai_calls"] == 2
    assert Decimal(signals[0]["cost_usd"]) == 2 * expected_cost(usage)
    # The SDK also injects a W3C traceparent (trace and span ids only: harmless).
    for exchange in fake_provider.exchanges:
        version, trace_id, _span_id, _flags = exchange.request_headers["traceparent"].split("-")
        assert (version, trace_id) == ("00", rows[0]["trace_id"])
