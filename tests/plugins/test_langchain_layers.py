"""LangChain plugin: exactly-once with lower layers, global registration, concurrency.

Lower layers (``paid_hooks.instrument("openai")``, the httpx hook, or any layer calling
``paid_hooks.start_call`` in the SDK's context) see the same provider call as the
LangChain callback: the ledger must hold ONE row per call, with exact usage and cost.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from decimal import Decimal
from typing import Any
from uuid import uuid4

import genai_prices
import httpx
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_openai import ChatOpenAI
from openai import OpenAI

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage
from paid_hooks_langchain import PaidLangChainCallback, _global, _usage
from paid_hooks_langchain._callback import pending_runs

GPT = "gpt-4o-mini"
USAGE = FakeUsage(5000, 400, cache_read_tokens=4096, reasoning_tokens=128)


def cost(u: FakeUsage, model: str = GPT) -> Decimal:
    fields = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}
    if u.cache_read_tokens:
        fields["cache_read_tokens"] = u.cache_read_tokens
    result = genai_prices.calc_price(genai_prices.Usage(**fields), model, provider_id="openai")
    return Decimal(result.total_price)


def chat_openai(fake: FakeProviderServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model=GPT, base_url=fake.openai_url, api_key="test", max_retries=0,
                      **kwargs)


def assert_exact(row: dict[str, Any], u: FakeUsage = USAGE) -> None:
    assert row["cost_status"] == "priced", row["cost_reason"]
    assert (row["input_tokens"], row["output_tokens"]) == (u.input_tokens, u.output_tokens)
    assert row["cache_read_tokens"] == u.cache_read_tokens
    assert row["reasoning_tokens"] == u.reasoning_tokens
    assert Decimal(row["cost_usd"]) == cost(u)


@pytest.fixture(autouse=True)
def _isolation():
    import langchain_openai.chat_models._client_utils as openai_utils

    openai_utils._cached_async_httpx_client.cache_clear()  # one client per event loop
    yield
    paid_hooks.uninstrument("langchain", "openai")
    assert pending_runs() == 0


@pytest.fixture
def cb() -> dict[str, Any]:
    return {"callbacks": [PaidLangChainCallback()]}


# -- exactly once with paid_hooks.instrument("openai") --------------------------------


def test_openai_instrumentation_alone_records_the_call(paid_ledger, fake_provider):
    """The control for the tests below: the lower layer does see LangChain's calls."""
    paid_hooks.instrument("openai")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        chat_openai(fake_provider).invoke("hi")

    [row] = paid_ledger.calls()
    assert row["captured_by"] == "openai"
    assert_exact(row)


def test_exactly_once_invoke(paid_ledger, fake_provider, cb):
    paid_hooks.instrument("openai")
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        llm = chat_openai(fake_provider)
        llm.invoke("first", config=cb)
        llm.invoke("second", config=cb)
        signal("done", enable_cost_tracing=True)

    rows = paid_ledger.calls()
    assert len(rows) == 2
    assert {r["response_id"] for r in rows} == {e.response_id for e in fake_provider.exchanges}
    for row in rows:
        assert row["captured_by"] == "openai"  # the lower layer records; the callback stands down
        assert_exact(row)
    [sig] = paid_ledger.signals()
    assert sig["ai_calls"] == 2 and Decimal(sig["cost_usd"]) == 2 * cost(USAGE)


async def test_exactly_once_ainvoke_and_abatch(paid_ledger, fake_provider, cb):
    paid_hooks.instrument("openai")
    fake_provider.responder = lambda provider, body: FakeReply(usage=USAGE)
    with paid_tracing("acme", external_agent_id="support"):
        llm = chat_openai(fake_provider)
        await llm.ainvoke("one", config=cb)
        await llm.abatch(["two", "three"], config=cb)

    rows = paid_ledger.calls()
    assert len(rows) == 3 == len(fake_provider.exchanges)
    for row in rows:
        assert_exact(row)


def test_exactly_once_stream(paid_ledger, fake_provider, cb):
    paid_hooks.instrument("openai")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        list(chat_openai(fake_provider, stream_usage=True).stream("hi", config=cb))

    [row] = paid_ledger.calls()
    assert row["streaming"] == 1
    assert_exact(row)


async def test_exactly_once_astream(paid_ledger, fake_provider, cb):
    paid_hooks.instrument("openai")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        async for _ in chat_openai(fake_provider, stream_usage=True).astream("hi", config=cb):
            pass

    [row] = paid_ledger.calls()
    assert_exact(row)


# -- exactly once with any layer recording in the SDK's context -----------------------
#
# A minimal lower layer: an httpx event hook calling paid_hooks.start_call, as a provider
# auto-instrumentation or the HTTP hook does. A stream through LangChain carries no
# provider response id, so only this stand-down (not the ledger) can prevent a second row.


def _lower_hook(request: httpx.Request) -> None:
    body = json.loads(request.content)
    handle = paid_hooks.start_call(provider="openai", operation="chat",
                                   request_model=body.get("model"), captured_by="lower",
                                   streaming=bool(body.get("stream")))
    handle.usage_unknown("recorded_by_lower_layer")


async def _alower_hook(request: httpx.Request) -> None:
    _lower_hook(request)


def hooked_clients() -> dict[str, Any]:
    return {"http_client": httpx.Client(event_hooks={"request": [_lower_hook]}),
            "http_async_client": httpx.AsyncClient(event_hooks={"request": [_alower_hook]})}


@pytest.mark.parametrize("with_callback", [False, True], ids=["lower-only", "both"])
def test_lower_layer_wins_stream(paid_ledger, fake_provider, cb, with_callback):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        llm = chat_openai(fake_provider, stream_usage=True, **hooked_clients())
        list(llm.stream("hi", config=cb if with_callback else None))

    [row] = paid_ledger.calls()
    assert row["captured_by"] == "lower"
    assert row["cost_reason"] == "recorded_by_lower_layer"


async def test_lower_layer_wins_astream_and_ainvoke(paid_ledger, fake_provider, cb):
    fake_provider.responder = lambda provider, body: FakeReply(usage=USAGE)
    with paid_tracing("acme", external_agent_id="support"):
        llm = chat_openai(fake_provider, stream_usage=True, **hooked_clients())
        async for _ in llm.astream("hi", config=cb):
            pass
        await llm.ainvoke("hi", config=cb)
        await llm.abatch(["a", "b"], config=cb)

    rows = paid_ledger.calls()
    assert len(rows) == 4
    assert {r["captured_by"] for r in rows} == {"lower"}


def test_callback_records_when_no_lower_layer_records(paid_ledger, fake_provider, cb):
    """The hook is attached but sees no AI call: the callback must still record."""
    seen: list[str] = []
    client = httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]})
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        list(chat_openai(fake_provider, stream_usage=True, http_client=client)
             .stream("hi", config=cb))

    assert seen == ["/v1/chat/completions"]
    [row] = paid_ledger.calls()
    assert row["captured_by"] == "langchain"
    assert_exact(row)


# -- exactly once with the httpx hook -------------------------------------------------


def _httpx_plugin() -> Any:
    import paid_hooks_httpx

    return paid_hooks_httpx


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_exactly_once_with_httpx_hook(paid_ledger, fake_provider, cb, stream):
    plugin = _httpx_plugin()
    fake_provider.queue(FakeReply(usage=USAGE))
    client = plugin.instrument_client(httpx.Client(), provider="openai")
    with paid_tracing("acme", external_agent_id="support"):
        llm = chat_openai(fake_provider, stream_usage=True, http_client=client)
        if stream:
            list(llm.stream("hi", config=cb))
        else:
            llm.invoke("hi", config=cb)

    [row] = paid_ledger.calls()
    assert_exact(row)


async def test_exactly_once_with_httpx_hook_async(paid_ledger, fake_provider, cb):
    plugin = _httpx_plugin()
    fake_provider.responder = lambda provider, body: FakeReply(usage=USAGE)
    client = plugin.instrument_client(httpx.AsyncClient(), provider="openai")
    with paid_tracing("acme", external_agent_id="support"):
        llm = chat_openai(fake_provider, stream_usage=True, http_async_client=client)
        await llm.ainvoke("hi", config=cb)
        async for _ in llm.astream("hi", config=cb):
            pass

    rows = paid_ledger.calls()
    assert len(rows) == 2
    for row in rows:
        assert_exact(row)


# -- attribution under concurrency ----------------------------------------------------


def usage_of(n: int) -> FakeUsage:
    return FakeUsage(700 + 13 * n, 20 + n, cache_read_tokens=5 * n)


def by_prompt(provider: str, body: Any) -> FakeReply:
    n = int(re.search(r"customer (\d+)", body["messages"][-1]["content"]).group(1))
    return FakeReply(usage=usage_of(n))


@pytest.mark.parametrize("lower", [False, True], ids=["callback", "callback+openai"])
async def test_concurrent_ainvokes_are_attributed_to_their_own_signal(
        paid_ledger, fake_provider, cb, lower):
    if lower:
        paid_hooks.instrument("openai")
    fake_provider.responder = by_prompt
    llm = chat_openai(fake_provider)

    async def handle(n: int) -> None:
        with paid_tracing(f"customer-{n}", external_agent_id="support"):
            await llm.ainvoke(f"customer {n}", config=cb)
            signal("handled", enable_cost_tracing=True)

    await asyncio.gather(*(handle(n) for n in range(50)))

    signals = paid_ledger.signals()
    assert len(signals) == 50
    for sig in signals:
        n = int(sig["external_customer_id"].removeprefix("customer-"))
        assert sig["ai_calls"] == 1, sig
        assert Decimal(sig["cost_usd"]) == cost(usage_of(n))
        assert sig["input_tokens"] == usage_of(n).input_tokens
    assert len(paid_ledger.calls()) == 50


def test_batch_calls_keep_the_callers_trace(paid_ledger, fake_provider, cb):
    fake_provider.responder = by_prompt
    with paid_tracing("acme", external_agent_id="support"):
        chat_openai(fake_provider).batch([f"customer {n}" for n in range(8)], config=cb)
        signal("batch_done", enable_cost_tracing=True)

    [sig] = paid_ledger.signals()
    assert sig["ai_calls"] == 8
    assert Decimal(sig["cost_usd"]) == sum((cost(usage_of(n)) for n in range(8)), Decimal(0))


# -- global registration --------------------------------------------------------------


def test_global_handler_records_plain_calls_in_every_thread(paid_ledger, fake_provider):
    assert "langchain" in paid_hooks.instrument("langchain")
    fake_provider.responder = lambda provider, body: FakeReply(usage=USAGE)
    llm = chat_openai(fake_provider)

    def worker() -> None:
        with paid_tracing("thread-customer", external_agent_id="support"):
            llm.invoke("hi")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    with paid_tracing("acme", external_agent_id="support"):
        llm.invoke("hi")
        list(llm.stream("hi", stream_usage=True))

    async def in_new_loop() -> None:
        with paid_tracing("loop-customer", external_agent_id="support"):
            await llm.ainvoke("hi")

    asyncio.run(in_new_loop())

    rows = paid_ledger.calls()
    assert len(rows) == 4
    assert sorted(r["external_customer_id"] for r in rows) == [
        "acme", "acme", "loop-customer", "thread-customer"]
    for row in rows:
        assert row["captured_by"] == "langchain"
        assert_exact(row)


def test_global_and_explicit_handlers_record_once(paid_ledger, fake_provider, cb):
    paid_hooks.instrument("langchain")
    paid_hooks.instrument("langchain")  # idempotent: one registration, one handler
    handler = _global.global_handler()
    paid_hooks.instrument("langchain")
    assert _global.global_handler() is handler
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        chat_openai(fake_provider).invoke("hi", config=cb)

    [row] = paid_ledger.calls()
    assert_exact(row)


def test_uninstrument_switches_the_global_handler_off(paid_ledger, fake_provider):
    fake_provider.responder = lambda provider, body: FakeReply(usage=USAGE)
    llm = chat_openai(fake_provider)
    paid_hooks.instrument("langchain")
    paid_hooks.uninstrument("langchain")
    paid_hooks.uninstrument("langchain")  # idempotent
    with paid_tracing("off", external_agent_id="support"):
        llm.invoke("hi")
    assert paid_ledger.calls() == []

    paid_hooks.instrument("langchain")
    with paid_tracing("on-again", external_agent_id="support"):
        llm.invoke("hi")
    [row] = paid_ledger.calls()
    assert row["external_customer_id"] == "on-again"
    assert len(fake_provider.exchanges) == 2


def test_raw_sdk_call_is_not_touched_by_the_langchain_plugin(paid_ledger, fake_provider):
    paid_hooks.instrument("langchain")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        OpenAI(base_url=fake_provider.openai_url, api_key="test").chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "hi"}])
    assert paid_ledger.calls() == []


# -- tolerance: missing metadata, other chat models -----------------------------------


def test_model_without_ls_model_name_is_unpriced_not_dropped(paid_ledger, cb):
    usage = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hi", usage_metadata=usage)]))
    with paid_tracing("acme", external_agent_id="support"):
        model.invoke("x", config=cb)

    [row] = paid_ledger.calls()
    assert row["provider"] == "genericfakechatmodel"
    assert (row["input_tokens"], row["output_tokens"]) == (10, 2)
    assert row["cost_status"] == "unpriced" and row["cost_reason"] == "no_model"


def test_metadata_none_and_llm_output_fallback(paid_ledger):
    """Direct events as a foreign callback manager may send them: no metadata at all."""
    handler = PaidLangChainCallback()
    run_id = uuid4()
    with paid_tracing("acme", external_agent_id="support"):
        handler.on_chat_model_start({}, [[]], run_id=run_id, metadata=None)
        result = LLMResult(
            generations=[[ChatGeneration(message=AIMessage(content=""))]],
            llm_output={"token_usage": {"prompt_tokens": 5000, "completion_tokens": 400,
                                        "prompt_tokens_details": {"cached_tokens": 4096},
                                        "completion_tokens_details": {
                                            "reasoning_tokens": 128}},
                        "model_name": GPT, "id": "chatcmpl-direct"})
        handler.on_llm_end(result, run_id=run_id)
        handler.on_llm_end(result, run_id=run_id)  # a second end event records nothing

    [row] = paid_ledger.calls()
    assert row["provider"] == "unknown"
    assert row["response_id"] == "chatcmpl-direct"
    assert_exact(row)


@pytest.mark.parametrize(("metadata", "params", "serialized", "expected"), [
    ({"ls_provider": "openai"}, None, None, "openai"),
    ({"ls_provider": "azure"}, None, None, "azure.ai.openai"),
    ({"ls_provider": "google_genai"}, None, None, "gcp.gemini"),
    ({"ls_provider": "google_vertexai"}, None, None, "gcp.vertex_ai"),
    ({"ls_provider": "amazon_bedrock"}, None, None, "aws.bedrock"),
    ({"ls_provider": "bedrock"}, None, None, "aws.bedrock"),
    ({"ls_provider": "mistralai"}, None, None, "mistral_ai"),
    ({"ls_provider": "xai"}, None, None, "x_ai"),
    ({"ls_provider": "SomeNewProvider"}, None, None, "somenewprovider"),
    ({}, {"_type": "anthropic-chat"}, None, "anthropic"),
    (None, None, {"id": ["langchain", "chat_models", "openai", "ChatOpenAI"]}, "openai"),
    (None, None, None, "unknown"),
])
def test_provider_names(metadata, params, serialized, expected):
    assert _usage.provider_name(metadata, params, serialized) == expected


def test_usage_metadata_is_inclusive_and_tier_prefixed_keys_are_read():
    message = AIMessage(content="", usage_metadata={
        "input_tokens": 900, "output_tokens": 70, "total_tokens": 970,
        "input_token_details": {"priority_cache_read": 300, "priority": 600},
        "output_token_details": {"priority_reasoning": 20, "priority": 50}})
    usage = _usage.usage_from_message(message)
    assert usage == paid_hooks.Usage(input_tokens=900, output_tokens=70,
                                     cache_read_tokens=300, reasoning_tokens=20)
