"""LlamaIndex embeddings: estimated by the handler alone, measured by a provider layer.

LlamaIndex's embedding events carry no usage. With only the LlamaIndex handler the
input tokens are estimated (tiktoken ``cl100k_base``) and marked ``estimated``; when a
provider layer (the openai plugin, the httpx hook) records the request, its measured
count is the one row.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal

import genai_prices
import httpx
import llama_index.core
import openai
import pytest
import tiktoken

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage
from paid_hooks_llamaindex import PaidLlamaIndexHandler
from paid_hooks_llamaindex._handler import TRACKER

OpenAIEmbedding = pytest.importorskip("llama_index.embeddings.openai").OpenAIEmbedding

MODEL = "text-embedding-3-small"
SECRET = "sk-llamaindex-TESTSECRET-0123456789"
TEXTS = ["The refund window is thirty days.", "Shipping takes two to five business days.",
         "Support answers within one working day."]
SERVER_SAYS = FakeUsage(999, 0)  # what the provider reports: an estimate must not show it


def cl100k_tokens(*texts: str) -> int:
    """Independent count with tiktoken (its data file is bundled with llama-index-core)."""
    cache = os.path.join(os.path.dirname(llama_index.core.__file__), "_static",
                         "tiktoken_cache")
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", cache)
    encoding = tiktoken.get_encoding("cl100k_base")
    return sum(len(encoding.encode(t)) for t in texts)


def expected_cost(input_tokens: int) -> Decimal:
    price = genai_prices.calc_price(genai_prices.Usage(input_tokens=input_tokens), MODEL,
                                    provider_id="openai")
    return Decimal(price.total_price)


def assert_estimated(row: dict, *texts: str) -> None:
    tokens = cl100k_tokens(*texts)
    assert tokens != SERVER_SAYS.input_tokens
    assert row["operation"] == "embeddings"
    assert row["provider"] == "openai"
    assert row["captured_by"] == "llamaindex"
    assert row["model"] == MODEL
    assert row["cost_status"] == "priced", row["cost_reason"]
    assert row["input_tokens"] == tokens
    assert row["output_tokens"] == 0
    assert json.loads(row["usage_json"])["estimated"] is True
    assert row["external_customer_id"] == "acme"
    assert Decimal(row["cost_usd"]) == expected_cost(tokens)


def assert_measured(row: dict, tokens: int, captured_by: str) -> None:
    assert row["operation"] == "embeddings"
    assert row["captured_by"] == captured_by
    assert row["cost_status"] == "priced", row["cost_reason"]
    assert row["input_tokens"] == tokens
    assert "estimated" not in json.loads(row["usage_json"])
    assert Decimal(row["cost_usd"]) == expected_cost(tokens)


@pytest.fixture
def handler(paid_ledger):
    registered = PaidLlamaIndexHandler.register()
    yield registered
    PaidLlamaIndexHandler.unregister()
    assert TRACKER.open_calls() == 0


@pytest.fixture
def embed(fake_provider):
    return OpenAIEmbedding(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                           max_retries=1)


# -- estimated (the handler alone) ------------------------------------------------------


def test_text_embedding_is_estimated(handler, embed, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=SERVER_SAYS))
    with paid_tracing("acme", external_agent_id="indexer"):
        vector = embed.get_text_embedding(TEXTS[0])
        signal("document_indexed", enable_cost_tracing=True)
    assert vector
    [row] = paid_ledger.calls()
    assert_estimated(row, TEXTS[0])
    [sig] = paid_ledger.signals()
    assert Decimal(sig["cost_usd"]) == expected_cost(cl100k_tokens(TEXTS[0]))


async def test_async_query_embedding_is_estimated(handler, embed, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=SERVER_SAYS))
    with paid_tracing("acme", external_agent_id="indexer"):
        await embed.aget_query_embedding(TEXTS[1])
    [row] = paid_ledger.calls()
    assert_estimated(row, TEXTS[1])


def test_batches_are_one_estimated_call_each(handler, fake_provider, paid_ledger):
    embed = OpenAIEmbedding(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                            embed_batch_size=2, max_retries=1)
    fake_provider.queue(FakeReply(usage=SERVER_SAYS), FakeReply(usage=SERVER_SAYS))
    with paid_tracing("acme", external_agent_id="indexer"):
        embed.get_text_embedding_batch(TEXTS)
    assert len(fake_provider.exchanges) == 2
    rows = sorted(paid_ledger.calls(), key=lambda r: r["input_tokens"])
    expected = sorted([(TEXTS[0], TEXTS[1]), (TEXTS[2],)], key=lambda t: cl100k_tokens(*t))
    assert len(rows) == 2
    for row, texts in zip(rows, expected, strict=True):
        assert_estimated(row, *texts)


async def test_async_batches_in_flight_together_are_estimated_each(handler, fake_provider,
                                                                   paid_ledger):
    # aget_text_embedding_batch emits every Start event, gathers, then every End event.
    embed = OpenAIEmbedding(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                            embed_batch_size=1, max_retries=1)
    fake_provider.queue(*(FakeReply(usage=SERVER_SAYS) for _ in TEXTS))
    with paid_tracing("acme", external_agent_id="indexer"):
        await embed.aget_text_embedding_batch(TEXTS)
    rows = paid_ledger.calls()
    assert sorted(r["input_tokens"] for r in rows) == sorted(cl100k_tokens(t) for t in TEXTS)
    assert all(json.loads(r["usage_json"])["estimated"] for r in rows)


def test_embedding_error_reaches_caller_and_is_no_charge(handler, embed, fake_provider,
                                                         paid_ledger):
    fake_provider.queue(FakeReply(status=400))
    with paid_tracing("acme", external_agent_id="indexer"), \
            pytest.raises(openai.BadRequestError):
        embed.get_text_embedding(TEXTS[0])
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["error_type"] == "BadRequestError"
    assert row["operation"] == "embeddings"


# -- measured (a provider layer records the request) ------------------------------------


def test_httpx_hook_measures_the_embedding_instead_of_the_estimate(handler, fake_provider,
                                                                    paid_ledger):
    from paid_hooks_httpx import instrument_client

    embed = OpenAIEmbedding(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                            http_client=instrument_client(httpx.Client()), max_retries=1)
    fake_provider.queue(FakeReply(usage=FakeUsage(37, 0)))
    with paid_tracing("acme", external_agent_id="indexer"):
        embed.get_text_embedding(TEXTS[0])
    [row] = paid_ledger.calls()
    assert_measured(row, 37, "httpx")


@pytest.fixture
def openai_instrumented(paid_ledger):
    assert "openai" in paid_hooks.instrument("openai")
    yield
    paid_hooks.uninstrument("openai")


def test_openai_plugin_measures_the_embedding_instead_of_the_estimate(
        handler, openai_instrumented, embed, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=FakeUsage(37, 0)))
    with paid_tracing("acme", external_agent_id="indexer"):
        embed.get_text_embedding(TEXTS[0])
    [row] = paid_ledger.calls()
    assert_measured(row, 37, "openai")


async def test_openai_plugin_measures_async_batches_in_flight_together(
        handler, openai_instrumented, fake_provider, paid_ledger):
    embed = OpenAIEmbedding(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                            embed_batch_size=1, max_retries=1)
    fake_provider.queue(*(FakeReply(usage=FakeUsage(40 + i, 0)) for i in range(len(TEXTS))))
    with paid_tracing("acme", external_agent_id="indexer"):
        await embed.aget_text_embedding_batch(TEXTS)
    rows = paid_ledger.calls()
    assert sorted(r["input_tokens"] for r in rows) == [40, 41, 42]
    assert {r["captured_by"] for r in rows} == {"openai"}
    assert TRACKER.open_calls() == 0


def test_no_secret_reaches_the_ledger(handler, embed, fake_provider, paid_ledger):
    with paid_tracing("acme", external_agent_id="indexer"):
        embed.get_text_embedding(TEXTS[0])
        signal("document_indexed", enable_cost_tracing=True)
    assert fake_provider.exchanges[0].request_headers["authorization"] == f"Bearer {SECRET}"
    dumped = repr(paid_ledger.calls() + paid_ledger.signals())
    assert SECRET not in dumped
    assert TEXTS[0] not in dumped
