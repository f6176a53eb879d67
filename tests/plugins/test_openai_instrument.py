"""OpenAI plugin auto-instrumentation: ``paid_hooks.instrument("openai")`` on plain clients.

Covers every recorded method, sync and async, exactly-once when the wrapper is used on an
instrumented SDK, and that ``uninstrument`` restores the SDK's original functions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from openai import AsyncOpenAI, OpenAI

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI
from paid_hooks_openai._operations import METHODS

USAGE = FakeUsage(1000, 200, cache_read_tokens=100, reasoning_tokens=20)
MESSAGES = [{"role": "user", "content": "hello"}]
AUDIO = ("a.mp3", b"ID3 audio")


def chat_cost(model: str = "gpt-4o-mini") -> Decimal:
    return Decimal(genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=100,
                           output_reasoning_tokens=20), model, provider_id="openai").total_price)


def original_functions() -> dict[tuple[type, str], Any]:
    found = {}
    for method in METHODS:
        module = importlib.import_module(method.module)
        for name in (method.sync_class, method.async_class):
            cls = getattr(module, name)
            found[(cls, method.name)] = cls.__dict__[method.name]
    return found


ORIGINALS = original_functions()


@pytest.fixture
def instrumented() -> Iterator[None]:
    assert "openai" in paid_hooks.instrument("openai")
    try:
        yield
    finally:
        paid_hooks.uninstrument("openai")


@pytest.fixture
def plain(fake_provider: FakeProviderServer) -> OpenAI:
    return OpenAI(base_url=fake_provider.openai_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def aplain(fake_provider: FakeProviderServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake_provider.openai_url, api_key="sk-test", max_retries=0)


def trace() -> Any:
    return paid_hooks.paid_tracing("acme", external_agent_id="auto")


def _drain(result: Any) -> None:
    if hasattr(result, "__next__"):
        for _ in result:
            pass


def chat_stream_helper(c: Any) -> None:
    with c.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        stream.until_done()


def responses_stream_helper(c: Any) -> None:
    with c.responses.stream(model="gpt-4o-mini", input="hi") as stream:
        stream.until_done()


SYNC_CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "chat.create": ("chat", lambda c: c.chat.completions.create(model="gpt-4o-mini",
                                                                messages=MESSAGES)),
    "chat.create.stream": ("chat", lambda c: c.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True)),
    "chat.stream": ("chat", chat_stream_helper),
    "responses.create": ("chat", lambda c: c.responses.create(model="gpt-4o-mini",
                                                              input="hi")),
    "responses.create.stream": ("chat", lambda c: c.responses.create(
        model="gpt-4o-mini", input="hi", stream=True)),
    "responses.stream": ("chat", responses_stream_helper),
}


@pytest.mark.parametrize("call", list(SYNC_CALLS), ids=list(SYNC_CALLS))
def test_plain_client_chat_calls_are_recorded(instrumented: None, plain: OpenAI,
                                              fake_provider: Any, paid_ledger: LedgerView,
                                              call: str) -> None:
    operation, run = SYNC_CALLS[call]
    fake_provider.queue(FakeReply(usage=USAGE))
    with trace():
        _drain(run(plain))
    [row] = paid_ledger.calls()
    assert (row["operation"], row["captured_by"], row["cost_status"]) == (operation, "openai",
                                                                          "priced")
    assert (row["input_tokens"], row["output_tokens"]) == (1000, 200)
    assert Decimal(row["cost_usd"]) == chat_cost()


def test_plain_client_other_operations(instrumented: None, plain: OpenAI, fake_provider: Any,
                                       paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=FakeUsage(40, 0)), FakeReply(usage=FakeUsage(50, 1000)),
                        FakeReply(usage=FakeUsage(50, 1000)), FakeReply(), FakeReply())
    with trace():
        plain.embeddings.create(model="text-embedding-3-small", input="x")
        plain.images.generate(model="gpt-image-1", prompt="x")
        plain.images.edit(model="gpt-image-1", image=("a.png", b"png"), prompt="x")
        plain.audio.transcriptions.create(model="whisper-1", file=AUDIO)
        plain.audio.speech.create(model="tts-1", voice="alloy", input="hi")
    rows = paid_ledger.calls()
    assert [r["operation"] for r in rows] == ["embeddings", "image_generation", "image_edit",
                                              "transcription", "text_to_speech"]
    assert all(r["cost_status"] == "priced" and r["captured_by"] == "openai" for r in rows)


async def test_async_plain_client(instrumented: None, aplain: AsyncOpenAI, fake_provider: Any,
                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(*[FakeReply(usage=USAGE) for _ in range(4)])
    with trace():
        await aplain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await aplain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                      stream=True)
        chunks = [c async for c in stream]
        async with aplain.chat.completions.stream(model="gpt-4o-mini",
                                                  messages=MESSAGES) as helper:
            await helper.until_done()
        await aplain.responses.parse(model="gpt-4o-mini", input="hi")
    assert all(c.choices for c in chunks)  # the injected usage chunk is hidden
    rows = paid_ledger.calls()
    assert [r["streaming"] for r in rows] == [0, 1, 1, 0]
    assert all(Decimal(r["cost_usd"]) == chat_cost() for r in rows)


# -- exactly once -------------------------------------------------------------------------


WRAPPED_CALLS = ["chat.create", "chat.create.stream", "chat.stream", "responses.create.stream",
                 "responses.stream"]


@pytest.mark.parametrize("call", WRAPPED_CALLS)
def test_wrapper_on_an_instrumented_sdk_records_once(instrumented: None, plain: OpenAI,
                                                     fake_provider: Any,
                                                     paid_ledger: LedgerView,
                                                     call: str) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    with trace():
        _drain(SYNC_CALLS[call][1](PaidOpenAI(plain)))
    rows = paid_ledger.calls()
    assert len(rows) == 1
    assert rows[0]["cost_status"] == "priced"
    # include_usage was added once, by the outer (wrapper) layer
    request = fake_provider.exchanges[0].request_json
    assert request.get("stream_options") in (None, {"include_usage": True})


async def test_async_wrapper_on_an_instrumented_sdk_records_once(
        instrumented: None, aplain: AsyncOpenAI, fake_provider: Any,
        paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    client = PaidAsyncOpenAI(aplain)
    with trace():
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                      stream=True)
        async for _ in stream:
            pass
    assert len(paid_ledger.calls()) == 2


def test_call_recorded_by_an_outer_layer_is_left_untouched(
        instrumented: None, plain: OpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    with trace():
        outer = paid_hooks.start_call(provider="openai", operation="chat",
                                      request_model="gpt-4o-mini", captured_by="framework")
        with outer.exclusive():
            chunks = list(PaidOpenAI(plain).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True))
        outer.usage_unknown("test")
    assert "stream_options" not in fake_provider.exchanges[0].request_json
    assert chunks[-1].choices[0].finish_reason == "stop"
    [row] = paid_ledger.calls()
    assert row["captured_by"] == "framework"


# -- instrument / uninstrument ------------------------------------------------------------


def test_uninstrument_restores_every_original_function() -> None:
    assert all(cls.__dict__[name] is fn for (cls, name), fn in ORIGINALS.items())
    paid_hooks.instrument("openai")
    try:
        assert all(cls.__dict__[name] is not fn for (cls, name), fn in ORIGINALS.items())
        paid_hooks.instrument("openai")  # idempotent: not wrapped twice
        assert all(cls.__dict__[name].__wrapped__ is fn for (cls, name), fn in ORIGINALS.items())
    finally:
        paid_hooks.uninstrument("openai")
    assert all(cls.__dict__[name] is fn for (cls, name), fn in ORIGINALS.items())
    paid_hooks.uninstrument("openai")  # idempotent
    assert all(cls.__dict__[name] is fn for (cls, name), fn in ORIGINALS.items())


def test_nothing_is_recorded_after_uninstrument(plain: OpenAI, fake_provider: Any,
                                                paid_ledger: LedgerView) -> None:
    paid_hooks.instrument("openai")
    try:
        stale = plain.chat.completions.with_raw_response.create  # holds the patched function
    finally:
        paid_hooks.uninstrument("openai")
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    with trace():
        plain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stale(model="gpt-4o-mini", messages=MESSAGES).parse()
    assert paid_ledger.calls() == []


def test_with_raw_response_is_recorded_when_instrumented(
        instrumented: None, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fresh = OpenAI(base_url=fake_provider.openai_url, api_key="sk-test", max_retries=0)
    fake_provider.queue(FakeReply(usage=USAGE))
    with trace():
        completion = fresh.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES).parse()
    [row] = paid_ledger.calls()
    assert row["response_id"] == completion.id
    assert Decimal(row["cost_usd"]) == chat_cost()
