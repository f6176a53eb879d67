"""``PaidLangChainCallback`` on real ``ChatOpenAI`` / ``ChatAnthropic`` against the fake server.

Every test asserts exact tokens and the exact cost, computed independently with
genai-prices from the canonical usage the fake server was told to report (it renders it
in each provider's native form; LangChain normalises it into ``usage_metadata``).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.caches import InMemoryCache
from langchain_openai import ChatOpenAI

from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage
from paid_hooks_langchain import PaidLangChainCallback
from paid_hooks_langchain._callback import pending_runs

GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"
SECRET = "sk-test-LANGCHAIN-SECRET-0123456789"
CB = {"callbacks": [PaidLangChainCallback()]}


def price(model: str, provider_id: str, **usage: int) -> Decimal:
    result = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider_id)
    return Decimal(result.total_price)


def openai_price(u: FakeUsage, model: str = GPT) -> Decimal:
    fields = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}
    if u.cache_read_tokens:
        fields["cache_read_tokens"] = u.cache_read_tokens
    return price(model, "openai", **fields)


def chat_openai(fake: FakeProviderServer, **kwargs: Any) -> ChatOpenAI:
    kwargs.setdefault("model", GPT)
    return ChatOpenAI(base_url=fake.openai_url, api_key=SECRET, max_retries=0, **kwargs)


def chat_anthropic(fake: FakeProviderServer, **kwargs: Any) -> ChatAnthropic:
    return ChatAnthropic(model=CLAUDE, base_url=fake.anthropic_url, api_key=SECRET,
                         max_retries=0, **kwargs)


def only_row(paid_ledger: Any) -> dict[str, Any]:
    rows = paid_ledger.calls()
    assert len(rows) == 1, rows
    return rows[0]


def assert_openai_row(row: dict[str, Any], u: FakeUsage, *, streaming: bool) -> None:
    assert row["provider"] == "openai"
    assert row["operation"] == "chat"
    assert row["captured_by"] == "langchain"
    assert row["model"] == GPT
    assert row["external_customer_id"] == "acme"
    assert row["streaming"] == int(streaming)
    assert row["cost_status"] == "priced", row["cost_reason"]
    assert (row["input_tokens"], row["output_tokens"]) == (u.input_tokens, u.output_tokens)
    assert row["cache_read_tokens"] == u.cache_read_tokens
    assert row["reasoning_tokens"] == u.reasoning_tokens
    assert Decimal(row["cost_usd"]) == openai_price(u)


@pytest.fixture(autouse=True)
def _fresh_async_clients():
    """langchain-openai/-anthropic cache ONE async httpx client per base_url process-wide;
    bound to the first test's event loop, it fails in the next ("Event loop is closed")."""
    import langchain_anthropic._client_utils as anthropic_utils
    import langchain_openai.chat_models._client_utils as openai_utils

    for cached in (openai_utils._cached_async_httpx_client,
                   anthropic_utils._get_default_async_httpx_client):
        cached.cache_clear()
    yield
    assert pending_runs() == 0


USAGES = [
    pytest.param(FakeUsage(1200, 300), id="plain"),
    pytest.param(FakeUsage(5000, 400, cache_read_tokens=4096, reasoning_tokens=128),
                 id="cache-read-and-reasoning"),
]


# -- ChatOpenAI: invoke / ainvoke -------------------------------------------------------


@pytest.mark.parametrize("usage", USAGES)
def test_openai_invoke_exact(paid_ledger, fake_provider, usage):
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        reply = chat_openai(fake_provider).invoke("Summarise this ticket.", config=CB)
        signal("ticket_summarised", enable_cost_tracing=True)

    assert reply.content.startswith("This is a reply")
    row = only_row(paid_ledger)
    assert_openai_row(row, usage, streaming=False)
    # the provider's response id (the ledger de-duplicates layers by it), not LangChain's
    assert row["response_id"] == fake_provider.exchanges[-1].response_id
    assert row["response_id"].startswith("chatcmpl-")
    [sig] = paid_ledger.signals()
    assert sig["ai_calls"] == 1 and Decimal(sig["cost_usd"]) == openai_price(usage)


@pytest.mark.parametrize("usage", USAGES)
async def test_openai_ainvoke_exact(paid_ledger, fake_provider, usage):
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        await chat_openai(fake_provider).ainvoke("Summarise this ticket.", config=CB)

    row = only_row(paid_ledger)
    assert_openai_row(row, usage, streaming=False)
    assert row["response_id"] == fake_provider.exchanges[-1].response_id


def test_served_model_is_priced_not_requested(paid_ledger, fake_provider):
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage, model="gpt-4o-2024-08-06"))
    with paid_tracing("acme", external_agent_id="support"):
        chat_openai(fake_provider, model="gpt-4o").invoke("hi", config=CB)

    row = only_row(paid_ledger)
    assert row["request_model"] == "gpt-4o"
    assert row["model"] == "gpt-4o-2024-08-06"
    assert Decimal(row["cost_usd"]) == price("gpt-4o-2024-08-06", "openai",
                                             input_tokens=1000, output_tokens=100)


# -- ChatOpenAI: stream / astream -------------------------------------------------------


@pytest.mark.parametrize("usage", USAGES)
def test_openai_stream_with_usage_exact(paid_ledger, fake_provider, usage):
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        chunks = list(chat_openai(fake_provider, stream_usage=True).stream("hi", config=CB))

    assert "".join(str(c.content) for c in chunks).startswith("This is a reply")
    row = only_row(paid_ledger)
    assert_openai_row(row, usage, streaming=True)
    # langchain-openai drops the chunk id: a streamed record carries no provider id
    assert row["response_id"] is None


@pytest.mark.parametrize("usage", USAGES)
async def test_openai_astream_with_usage_exact(paid_ledger, fake_provider, usage):
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        async for _ in chat_openai(fake_provider).astream("hi", config=CB, stream_usage=True):
            pass

    assert_openai_row(only_row(paid_ledger), usage, streaming=True)


def test_openai_stream_without_usage_is_usage_unknown(paid_ledger, fake_provider):
    """A custom base_url leaves ChatOpenAI.stream_usage None: no usage, never zero."""
    with paid_tracing("acme", external_agent_id="support"):
        list(chat_openai(fake_provider).stream("hi", config=CB))

    assert "stream_options" not in fake_provider.exchanges[-1].request_json
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == (
        "stream_usage_not_requested: pass stream_usage=True to ChatOpenAI")
    assert row["input_tokens"] is None and row["cost_usd"] is None
    assert row["streaming"] == 1 and row["model"] == GPT


async def test_openai_astream_without_usage_is_usage_unknown(paid_ledger, fake_provider):
    with paid_tracing("acme", external_agent_id="support"):
        async for _ in chat_openai(fake_provider).astream("hi", config=CB):
            pass

    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"].startswith("stream_usage_not_requested")


# -- ChatOpenAI: batch / abatch (usage varies per request) ------------------------------


def usage_by_prompt(provider: str, body: Any) -> FakeReply:
    """Usage that depends on the request, so concurrent calls have different costs."""
    n = int(re.search(r"call (\d+)", body["messages"][-1]["content"]).group(1))
    return FakeReply(usage=FakeUsage(1000 + 37 * n, 50 + n, cache_read_tokens=10 * n))


def usage_for(n: int) -> FakeUsage:
    return FakeUsage(1000 + 37 * n, 50 + n, cache_read_tokens=10 * n)


def test_openai_batch_exact(paid_ledger, fake_provider):
    fake_provider.responder = usage_by_prompt
    with paid_tracing("acme", external_agent_id="support"):
        chat_openai(fake_provider).batch([f"call {n}" for n in (1, 2, 3)], config=CB)

    rows = sorted(paid_ledger.calls(), key=lambda r: r["input_tokens"])
    assert len(rows) == 3
    for n, row in zip((1, 2, 3), rows, strict=True):
        assert_openai_row(row, usage_for(n), streaming=False)
    ids = {e.response_id for e in fake_provider.exchanges}
    assert {r["response_id"] for r in rows} == ids and len(ids) == 3


async def test_openai_abatch_exact(paid_ledger, fake_provider):
    fake_provider.responder = usage_by_prompt
    with paid_tracing("acme", external_agent_id="support"):
        await chat_openai(fake_provider).abatch([f"call {n}" for n in (4, 5, 6)], config=CB)

    rows = sorted(paid_ledger.calls(), key=lambda r: r["input_tokens"])
    assert len(rows) == 3
    for n, row in zip((4, 5, 6), rows, strict=True):
        assert_openai_row(row, usage_for(n), streaming=False)


# -- ChatAnthropic ----------------------------------------------------------------------

CACHED = FakeUsage(3000, 200, cache_read_tokens=1200, cache_write_tokens=600,
                   cache_write_1h_tokens=250)


def anthropic_price(u: FakeUsage, *, split: bool) -> Decimal:
    fields = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
              "cache_read_tokens": u.cache_read_tokens,
              "cache_write_tokens": u.cache_write_tokens}
    if split:
        fields["cache_write_5m_tokens"] = u.cache_write_tokens - u.cache_write_1h_tokens
        fields["cache_write_1h_tokens"] = u.cache_write_1h_tokens
    return price(CLAUDE, "anthropic", **fields)


def assert_anthropic_row(row: dict[str, Any], u: FakeUsage, *, streaming: bool,
                         split: bool) -> None:
    assert row["provider"] == "anthropic"
    assert row["captured_by"] == "langchain"
    assert row["model"] == CLAUDE
    assert row["streaming"] == int(streaming)
    assert row["cost_status"] == "priced", row["cost_reason"]
    # LangChain's usage_metadata is already inclusive: the cache is NOT added again
    assert (row["input_tokens"], row["output_tokens"]) == (u.input_tokens, u.output_tokens)
    assert row["cache_read_tokens"] == u.cache_read_tokens
    assert row["cache_write_tokens"] == u.cache_write_tokens
    assert Decimal(row["cost_usd"]) == anthropic_price(u, split=split)


def test_anthropic_invoke_cache_exact(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=CACHED))
    with paid_tracing("acme", external_agent_id="support"):
        chat_anthropic(fake_provider).invoke("Summarise this ticket.", config=CB)

    row = only_row(paid_ledger)
    assert_anthropic_row(row, CACHED, streaming=False, split=True)
    assert row["response_id"] == fake_provider.exchanges[-1].response_id
    assert row["response_id"].startswith("msg_")
    usage = json.loads(row["usage_json"])
    assert usage["cache_write_5m_tokens"] == 350 and usage["cache_write_1h_tokens"] == 250


async def test_anthropic_ainvoke_exact(paid_ledger, fake_provider):
    usage = FakeUsage(1500, 120, cache_read_tokens=1000, reasoning_tokens=40)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        await chat_anthropic(fake_provider).ainvoke("hi", config=CB)

    row = only_row(paid_ledger)
    assert row["reasoning_tokens"] == 40
    assert (row["input_tokens"], row["output_tokens"]) == (1500, 120)
    assert row["cache_read_tokens"] == 1000 and row["cache_write_tokens"] == 0
    assert Decimal(row["cost_usd"]) == price(CLAUDE, "anthropic", input_tokens=1500,
                                             output_tokens=120, cache_read_tokens=1000)


def test_anthropic_stream_exact(paid_ledger, fake_provider):
    """The real API repeats the cumulative input and cache counts in message_delta."""
    fake_provider.queue(FakeReply(usage=CACHED, extra={"delta_usage": "full"}))
    with paid_tracing("acme", external_agent_id="support"):
        list(chat_anthropic(fake_provider).stream("hi", config=CB))

    # message_delta carries no 5m/1h split: the write is priced at the generic rate
    assert_anthropic_row(only_row(paid_ledger), CACHED, streaming=True, split=False)


async def test_anthropic_astream_exact(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=CACHED, extra={"delta_usage": "full"}))
    with paid_tracing("acme", external_agent_id="support"):
        async for _ in chat_anthropic(fake_provider).astream("hi", config=CB):
            pass

    assert_anthropic_row(only_row(paid_ledger), CACHED, streaming=True, split=False)


def test_anthropic_stream_without_input_in_delta_is_usage_unknown(paid_ledger, fake_provider):
    """langchain-anthropic reads stream usage from message_delta only (langchain#35509).

    When message_delta carries only output_tokens, usage_metadata says input_tokens=0:
    pricing that would undercount, so the call is usage_unknown instead.
    """
    fake_provider.queue(FakeReply(usage=CACHED))
    with paid_tracing("acme", external_agent_id="support"):
        list(chat_anthropic(fake_provider).stream("hi", config=CB))

    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "input_tokens_not_reported"
    assert row["cost_usd"] is None


# -- errors and early close -------------------------------------------------------------


def test_error_reaches_caller_and_costs_nothing(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=400, error_message="bad request"))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.BadRequestError, match="bad request") as raised:
        chat_openai(fake_provider).invoke("hi", config=CB)

    row = only_row(paid_ledger)
    assert row["cost_status"] == "no_charge"
    assert row["call_status"] == "error"
    # langchain-openai >= 1.1 raises its own BadRequestError subclass; 1.0 the SDK's.
    assert row["error_type"] == type(raised.value).__qualname__
    assert row["input_tokens"] is None and row["cost_usd"] is None


async def test_async_error_reaches_caller_and_costs_nothing(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=429, error_message="slow down"))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(Exception, match="slow down") as raised:
        await chat_anthropic(fake_provider).ainvoke("hi", config=CB)

    row = only_row(paid_ledger)
    assert row["cost_status"] == "no_charge"
    assert row["error_type"] == type(raised.value).__qualname__


def test_stream_closed_early_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(900, 80)))
    with paid_tracing("acme", external_agent_id="support"):
        stream = chat_openai(fake_provider, stream_usage=True).stream("hi", config=CB)
        next(stream)
        next(stream)
        stream.close()

    assert fake_provider.exchanges[-1].status == 200  # the provider answered (and bills)
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"
    assert row["call_status"] == "ok" and row["cost_usd"] is None


async def test_astream_closed_early_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=CACHED, extra={"delta_usage": "full"}))
    with paid_tracing("acme", external_agent_id="support"):
        stream = chat_anthropic(fake_provider).astream("hi", config=CB)
        await stream.__anext__()
        await stream.aclose()

    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


# -- LangChain's LLM cache ----------------------------------------------------------------


def test_llm_cache_hit_costs_nothing(paid_ledger, fake_provider):
    usage = FakeUsage(2000, 100)
    fake_provider.queue(FakeReply(usage=usage))
    llm = chat_openai(fake_provider, cache=InMemoryCache())
    with paid_tracing("acme", external_agent_id="support"):
        llm.invoke("the same prompt", config=CB)
        signal("first", enable_cost_tracing=True)
    with paid_tracing("globex", external_agent_id="support"):
        cached = llm.invoke("the same prompt", config=CB)
        signal("second", enable_cost_tracing=True)

    assert cached.usage_metadata["total_cost"] == 0  # langchain-core's cache-hit marker
    assert len(fake_provider.exchanges) == 1  # the second answer came from the cache
    row = only_row(paid_ledger)
    assert row["external_customer_id"] == "acme"
    first, second = paid_ledger.signals()
    assert Decimal(first["cost_usd"]) == openai_price(usage) and first["ai_calls"] == 1
    assert Decimal(second["cost_usd"]) == 0 and second["ai_calls"] == 0


# -- secrets ----------------------------------------------------------------------------


def test_no_api_key_or_header_in_ledger(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10)), FakeReply(status=401))
    with paid_tracing("acme", external_agent_id="support"):
        chat_openai(fake_provider).invoke("hi", config=CB)
        with pytest.raises(openai.AuthenticationError):
            chat_openai(fake_provider).invoke("hi", config=CB)

    assert fake_provider.exchanges[0].request_headers["authorization"] == f"Bearer {SECRET}"
    rows = paid_ledger.calls()
    assert len(rows) == 2
    dump = repr(rows).lower()
    assert SECRET.lower() not in dump
    assert "bearer" not in dump and "authorization" not in dump and "headers" not in dump


async def test_cancelled_call_is_usage_unknown(paid_ledger, fake_provider):
    """A cancelled request may still be billed: usage_unknown, never no_charge."""
    import asyncio
    import threading

    arrived, release = threading.Event(), threading.Event()

    def slow(provider: str, body: Any) -> FakeReply:
        arrived.set()
        release.wait(5)
        return FakeReply(usage=FakeUsage(100, 10))

    fake_provider.responder = slow
    with paid_tracing("acme", external_agent_id="support"):
        task = asyncio.create_task(chat_openai(fake_provider).ainvoke("hi", config=CB))
        await asyncio.to_thread(arrived.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    release.set()

    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "cancelled"
