"""The httpx/httpx2 hook on the other wire formats and on raw OpenAI-compatible traffic.

* real SDKs against the fake server: OpenAI Responses and Embeddings (openai), Mistral
  (mistralai, httpx2), Gemini (google-genai, httpx and httpx2);
* raw ``httpx`` calls to OpenAI-compatible gateways (vLLM, OpenRouter, Groq) against small
  routes registered here, content encodings (gzip, deflate, zstd), malformed bodies,
  redirects and non-AI requests;
* the request classifier and the incremental readers, under arbitrary chunking.
"""

from __future__ import annotations

import dataclasses
import gc
import gzip
import json
import zlib
from decimal import Decimal
from typing import Any

import genai_prices
import httpx
import httpx2
import openai
import pytest
import zstandard
from google import genai
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st
from mistralai.client import Mistral

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage
from paid_hooks.testing.fake.mistral_format import mistral_url
from paid_hooks.testing.fake.server import (
    FakeRequest,
    FakeResponse,
    sse_event,
    sse_response,
)
from paid_hooks_httpx import instrument_client
from paid_hooks_httpx._decode import make_decoder
from paid_hooks_httpx._parse import SseReader
from paid_hooks_httpx._routes import classify

KEY = "sk-compat-SECRET-key"
MODULES = [httpx, httpx2]
MODULE_IDS = ["httpx", "httpx2"]
MESSAGES = [{"role": "user", "content": "Qualify this lead."}]


def expected_cost(model: str, provider_id: str, **usage: int) -> Decimal:
    return genai_prices.calc_price(genai_prices.Usage(**usage), model,
                                   provider_id=provider_id).total_price


def one_call(ledger: Any) -> dict[str, Any]:
    [row] = ledger.calls()
    assert row["captured_by"] == "httpx"
    return row


def tokens(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"],
            row["reasoning_tokens"])


def traced() -> paid_hooks.paid_tracing:
    return paid_hooks.paid_tracing("acme", external_agent_id="sdr")


# -- OpenAI Responses and Embeddings through the openai SDK ---------------------------------

GPT5 = "gpt-5-mini"
RESP_USAGE = FakeUsage(1500, 400, cache_read_tokens=500, reasoning_tokens=128)


def _openai(fake: FakeProviderServer, mod: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_url, api_key=KEY, max_retries=0,
                         http_client=instrument_client(mod.Client()))


def assert_responses_row(row: dict[str, Any], *, streaming: bool) -> None:
    assert (row["provider"], row["operation"], row["model"]) == ("openai", "chat", GPT5)
    assert row["streaming"] == int(streaming)
    assert tokens(row) == (1500, 400, 500, 128)
    assert row["response_id"].startswith("resp_")
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == expected_cost(
        GPT5, "openai", input_tokens=1500, output_tokens=400, cache_read_tokens=500,
        output_reasoning_tokens=128)


@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_responses_json_and_stream(paid_ledger, fake_provider, mod):
    client = _openai(fake_provider, mod)
    fake_provider.queue(FakeReply(usage=RESP_USAGE, gzip=True), FakeReply(usage=RESP_USAGE))
    with traced():
        response = client.responses.create(model=GPT5, input="Qualify this lead.")
        events = [e.type for e in client.responses.create(model=GPT5, input="again",
                                                          stream=True)]
    assert events[-1] == "response.completed"
    json_row, stream_row = paid_ledger.calls()
    assert_responses_row(json_row, streaming=False)
    assert json_row["response_id"] == response.id
    assert_responses_row(stream_row, streaming=True)


async def test_responses_async_stream_incomplete_is_still_billed(paid_ledger, fake_provider):
    client = openai.AsyncOpenAI(base_url=fake_provider.openai_url, api_key=KEY, max_retries=0,
                                http_client=instrument_client(httpx2.AsyncClient()))
    fake_provider.queue(FakeReply(usage=RESP_USAGE, extra={"terminal": "response.incomplete"}))
    async with traced():
        stream = await client.responses.create(model=GPT5, input="x", stream=True)
        events = [e.type async for e in stream]
    assert events[-1] == "response.incomplete"
    assert_responses_row(one_call(paid_ledger), streaming=True)


@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_embeddings(paid_ledger, fake_provider, mod):
    client = _openai(fake_provider, mod)
    fake_provider.queue(FakeReply(usage=FakeUsage(321, 0)))
    with traced():
        result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2
    row = one_call(paid_ledger)
    assert (row["provider"], row["operation"]) == ("openai", "embeddings")
    assert (row["input_tokens"], row["output_tokens"]) == (321, 0)
    assert Decimal(row["cost_usd"]) == expected_cost("text-embedding-3-small", "openai",
                                                     input_tokens=321, output_tokens=0)


@pytest.mark.parametrize("gzip_body", [False, True], ids=["plain", "gzip"])
def test_embeddings_body_over_one_mib_is_scanned_not_parsed(paid_ledger, fake_provider,
                                                            gzip_body):
    client = _openai(fake_provider, httpx)
    fake_provider.queue(FakeReply(usage=FakeUsage(4096, 0), gzip=gzip_body))
    with traced():
        raw = client.embeddings.with_raw_response.create(
            model="text-embedding-3-large", input=["lead"] * 64, dimensions=3072,
            encoding_format="float")
    assert len(raw.content) > 1 << 20
    assert len(raw.parse().data) == 64
    row = one_call(paid_ledger)
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == (
        "text-embedding-3-large", 4096, 0)
    assert Decimal(row["cost_usd"]) == expected_cost("text-embedding-3-large", "openai",
                                                     input_tokens=4096, output_tokens=0)


# -- Mistral (mistralai over httpx2) ----------------------------------------------------------

MISTRAL = "mistral-small-latest"


def test_mistral_chat_stream_and_embeddings(paid_ledger, fake_provider):
    client = Mistral(api_key=KEY, server_url=mistral_url(fake_provider),
                     client=instrument_client(httpx2.Client(), provider="mistral_ai"))
    usage = FakeUsage(900, 120, cache_read_tokens=300)
    fake_provider.queue(FakeReply(usage=usage), FakeReply(usage=usage, gzip=True),
                        FakeReply(usage=FakeUsage(77, 0)))
    with traced():
        client.chat.complete(model=MISTRAL, messages=MESSAGES)
        chunks = list(client.chat.stream(model=MISTRAL, messages=MESSAGES))
        client.embeddings.create(model="mistral-embed", inputs=["lead"])
    assert chunks[-1].data.usage.prompt_tokens == 900
    chat, stream, embed = paid_ledger.calls()
    for row, streaming in ((chat, 0), (stream, 1)):
        assert (row["provider"], row["model"], row["streaming"]) == ("mistral_ai", MISTRAL,
                                                                      streaming)
        assert tokens(row) == (900, 120, 300, None)
        assert Decimal(row["cost_usd"]) == expected_cost(
            MISTRAL, "mistral", input_tokens=900, output_tokens=120, cache_read_tokens=300)
    assert (embed["operation"], embed["input_tokens"]) == ("embeddings", 77)
    assert Decimal(embed["cost_usd"]) == expected_cost("mistral-embed", "mistral",
                                                       input_tokens=77, output_tokens=0)


async def test_mistral_async_stream(paid_ledger, fake_provider):
    client = Mistral(api_key=KEY, server_url=mistral_url(fake_provider),
                     async_client=instrument_client(httpx2.AsyncClient(),
                                                    provider="mistral_ai"))
    fake_provider.queue(FakeReply(usage=FakeUsage(900, 120)))
    async with traced():
        stream = await client.chat.stream_async(model=MISTRAL, messages=MESSAGES)
        async for _ in stream:
            pass
    row = one_call(paid_ledger)
    assert tokens(row) == (900, 120, None, None)
    assert Decimal(row["cost_usd"]) == expected_cost(MISTRAL, "mistral", input_tokens=900,
                                                     output_tokens=120)


# -- Gemini (google-genai over httpx and httpx2) ----------------------------------------------

GEMINI = "gemini-2.5-flash"
GEMINI_USAGE = FakeUsage(1000, 300, cache_read_tokens=200, reasoning_tokens=120)
GEMINI_EXTRA = {"tool_use_prompt_tokens": 50, "prompt_audio_tokens": 70}


def gemini_cost() -> Decimal:
    return expected_cost(GEMINI, "google", input_tokens=1000, output_tokens=300,
                         cache_read_tokens=200, output_reasoning_tokens=120,
                         input_audio_tokens=70, cache_audio_read_tokens=0)


def assert_gemini_row(row: dict[str, Any], *, streaming: bool) -> None:
    assert (row["provider"], row["operation"], row["model"]) == ("gcp.gemini",
                                                                 "generate_content", GEMINI)
    assert row["streaming"] == int(streaming)
    # input = prompt + tool-use prompt; output = candidates + thoughts (never chunk sums)
    assert tokens(row) == (1000, 300, 200, 120)
    assert json.loads(row["usage_json"])["input_audio_tokens"] == 70
    assert row["response_id"].startswith("resp-")
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == gemini_cost()


@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_gemini_generate_content_and_stream(paid_ledger, fake_provider, mod):
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=fake_provider.url, httpx_client=instrument_client(mod.Client())))
    fake_provider.queue(FakeReply(usage=GEMINI_USAGE, extra=GEMINI_EXTRA),
                        FakeReply(usage=GEMINI_USAGE, extra=GEMINI_EXTRA, gzip=True,
                                  text="word " * 30),
                        FakeReply(usage=FakeUsage(44, 0)))
    with traced():
        client.models.generate_content(model=GEMINI, contents="Qualify this lead.")
        chunks = list(client.models.generate_content_stream(model=GEMINI, contents="x"))
        client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert len(chunks) > 3  # every chunk carried a (partial) usageMetadata
    json_row, stream_row, embed_row = paid_ledger.calls()
    assert_gemini_row(json_row, streaming=False)
    assert_gemini_row(stream_row, streaming=True)
    assert (embed_row["operation"], embed_row["input_tokens"]) == ("embeddings", 44)
    assert Decimal(embed_row["cost_usd"]) == expected_cost(
        "gemini-embedding-001", "google", input_tokens=44, output_tokens=0)


async def test_gemini_async_stream(paid_ledger, fake_provider):
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=fake_provider.url,
        httpx_async_client=instrument_client(httpx2.AsyncClient())))
    fake_provider.queue(FakeReply(usage=GEMINI_USAGE, extra=GEMINI_EXTRA, gzip=True))
    async with traced():
        async for _ in await client.aio.models.generate_content_stream(model=GEMINI,
                                                                       contents="x"):
            pass
    assert_gemini_row(one_call(paid_ledger), streaming=True)


@pytest.mark.parametrize("mod", MODULES, ids=MODULE_IDS)
def test_gemini_stream_abandoned_early_is_usage_unknown(paid_ledger, fake_provider, mod):
    """Partial usageMetadata arrived, but without ``finishReason`` it is not the final one.

    With httpx (not httpx2) nobody closes the response when the SDK's generator stops:
    the tee is only garbage-collected, and the call is recorded at the next AI request.
    """
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=fake_provider.url, httpx_client=instrument_client(mod.Client())))
    fake_provider.queue(FakeReply(usage=GEMINI_USAGE, text="word " * 40_000),
                        FakeReply(usage=GEMINI_USAGE, extra=GEMINI_EXTRA))
    with traced():
        stream = client.models.generate_content_stream(model=GEMINI, contents="x")
        first = next(stream)
        assert first.usage_metadata.prompt_token_count == 1000
        stream.close()
        del stream, first
        gc.collect()
        client.models.generate_content(model=GEMINI, contents="next request")
    early, following = paid_ledger.calls()
    assert (early["cost_status"], early["cost_reason"]) == ("usage_unknown",
                                                            "stream_closed_early")
    assert early["response_id"].startswith("resp-") and early["streaming"] == 1
    assert_gemini_row(following, streaming=False)


def test_gemini_4xx_is_no_charge(paid_ledger, fake_provider):
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=fake_provider.url, httpx_client=instrument_client(httpx2.Client())))
    fake_provider.queue(FakeReply(status=400, error_message="bad request"))
    with traced(), pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(model=GEMINI, contents="x")
    assert info.value.code == 400
    row = one_call(paid_ledger)
    assert (row["cost_status"], row["error_type"]) == ("no_charge", "http_400")


# -- raw OpenAI-compatible gateways -----------------------------------------------------------

COMPAT_BASE = {"object": "chat.completion.chunk", "created": 1700000000,
               "model": "meta-llama/Llama-3.1-8B-Instruct"}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _vllm_continuous(server: Any, request: FakeRequest, match: Any) -> FakeResponse:
    """vLLM ``continuous_usage_stats``: cumulative usage on EVERY chunk."""
    count = int(request.json().get("max_tokens", 5))

    def events() -> Any:
        for i in range(1, count + 1):
            yield sse_event({**COMPAT_BASE, "id": "cmpl-vllm", "usage": _usage(40, i),
                             "choices": [{"index": 0, "delta": {"content": "x"},
                                          "finish_reason": "length" if i == count else None}]})
        yield sse_event("[DONE]")

    return sse_response(events())


def _groq(server: Any, request: FakeRequest, match: Any) -> FakeResponse:
    """Groq: the final chunk's usage sits in ``x_groq.usage``."""
    base = {**COMPAT_BASE, "id": "chatcmpl-groq", "model": "llama-3.3-70b-versatile"}
    return sse_response(iter([
        sse_event({**base, "choices": [{"index": 0, "delta": {"content": "hi"},
                                        "finish_reason": None}]}),
        b": keep-alive comment\n\n",
        b"data: {not json\n\n",
        sse_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "x_groq": {"id": "req_1", "usage": _usage(250, 60)}}),
        sse_event("[DONE]"),
    ]))


_COMPAT_JSON = {"id": "chatcmpl-enc", "object": "chat.completion", "created": 1700000000,
                "model": "gpt-4o-mini", "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant",
                                                                "content": "ok"}}],
                "usage": _usage(640, 32)}


def _encoded(server: Any, request: FakeRequest, match: Any) -> FakeResponse:
    encoding = match.group(1)
    body = json.dumps(_COMPAT_JSON).encode()
    if encoding == "zstd":  # two frames, as a streaming compressor may send
        data = zstandard.ZstdCompressor().compress(body[:100]) + \
            zstandard.ZstdCompressor().compress(body[100:])
    elif encoding == "deflate":  # zlib-wrapped, what RFC 9110 means by deflate
        data = zlib.compress(body)
    elif encoding == "rawdeflate":  # raw deflate, what some servers send as "deflate"
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = compressor.compress(body) + compressor.flush()
        encoding = "deflate"
    else:  # an encoding nobody can decode
        data = body
    return FakeResponse(status=200, body=data, headers={"content-type": "application/json",
                                                        "content-encoding": encoding})


def _malformed(server: Any, request: FakeRequest, match: Any) -> FakeResponse:
    return FakeResponse(status=200, body=b'{"id": "x", "usage": {"prompt_tok',
                        headers={"content-type": "application/json"})


def _redirect(server: Any, request: FakeRequest, match: Any) -> FakeResponse:
    return FakeResponse(status=307, body=b"", headers={"location": "/v1/chat/completions"})


@pytest.fixture
def compat(fake_provider: FakeProviderServer) -> FakeProviderServer:
    if not getattr(fake_provider, "_httpx_compat_routes", False):
        fake_provider.route("POST", r"/vllm-continuous/chat/completions", _vllm_continuous)
        fake_provider.route("POST", r"/groq/openai/chat/completions", _groq)
        fake_provider.route("POST", r"/encoded/(\w+)/chat/completions", _encoded)
        fake_provider.route("POST", r"/malformed/chat/completions", _malformed)
        fake_provider.route("POST", r"/redirect/chat/completions", _redirect)
        fake_provider._httpx_compat_routes = True  # type: ignore[attr-defined]
    return fake_provider


def test_vllm_style_gateway_through_the_openai_path(paid_ledger, fake_provider):
    """Any host, OpenAI-compatible path: recorded as ``openai``; an unknown model is unpriced."""
    fake_provider.queue(FakeReply(usage=FakeUsage(512, 64)))
    with instrument_client(httpx.Client()) as client, traced():
        reply = client.post(f"{fake_provider.url}/vllm/v1/chat/completions",
                            json={"model": "meta-llama/Llama-3.1-8B-Instruct",
                                  "messages": MESSAGES})
    assert reply.json()["usage"]["prompt_tokens"] == 512
    row = one_call(paid_ledger)
    assert (row["provider"], row["model"]) == ("openai", "meta-llama/Llama-3.1-8B-Instruct")
    assert (row["input_tokens"], row["output_tokens"]) == (512, 64)
    assert (row["cost_status"], row["cost_reason"]) == ("unpriced", "unknown_model")


def test_openrouter_style_gateway_with_provider_override(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(700, 90, cache_read_tokens=100)))
    client = openai.OpenAI(base_url=f"{fake_provider.url}/api/v1", api_key=KEY,
                           http_client=instrument_client(httpx2.Client(),
                                                         provider="openrouter"))
    with traced():
        list(client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES,
                                            stream=True,
                                            stream_options={"include_usage": True}))
    row = one_call(paid_ledger)
    assert (row["provider"], row["model"]) == ("openrouter", "openai/gpt-4o-mini")
    assert tokens(row) == (700, 90, 100, 0)
    assert Decimal(row["cost_usd"]) == expected_cost(
        "openai/gpt-4o-mini", "openrouter", input_tokens=700, output_tokens=90,
        cache_read_tokens=100)


def test_vllm_continuous_usage_takes_the_last_and_early_close_is_unknown(paid_ledger, compat):
    url = f"{compat.url}/vllm-continuous/chat/completions"
    body = {"model": "meta-llama/Llama-3.1-8B-Instruct", "stream": True}
    with instrument_client(httpx.Client()) as client:
        with traced(), client.stream("POST", url, json={**body, "max_tokens": 25}) as r:
            lines = [line for line in r.iter_lines() if line]
        with traced(), client.stream("POST", url, json={**body, "max_tokens": 50_000}) as r:
            next(r.iter_lines())  # usage so far: 40 + 1; the caller stops here
    assert lines[-1] == "data: [DONE]"
    complete, early = paid_ledger.calls()
    assert (complete["input_tokens"], complete["output_tokens"]) == (40, 25)  # last, not sum
    assert (early["cost_status"], early["cost_reason"]) == ("usage_unknown",
                                                            "stream_closed_early")


def test_groq_x_groq_usage_and_malformed_events_are_skipped(paid_ledger, compat):
    with instrument_client(httpx2.Client(), provider="groq") as client, traced():
        text = client.post(f"{compat.url}/groq/openai/chat/completions",
                           json={"model": "llama-3.3-70b-versatile", "stream": True}).text
    assert "data: {not json" in text  # the caller still gets every byte
    row = one_call(paid_ledger)
    assert (row["provider"], row["input_tokens"], row["output_tokens"]) == ("groq", 250, 60)
    assert Decimal(row["cost_usd"]) == expected_cost("llama-3.3-70b-versatile", "groq",
                                                     input_tokens=250, output_tokens=60)


@pytest.mark.parametrize(("mod", "encoding"), [
    (httpx, "zstd"),  # httpx asks for zstd when zstandard is installed (httpx2 does not)
    (httpx, "deflate"), (httpx, "rawdeflate"), (httpx2, "deflate"), (httpx2, "rawdeflate"),
], ids=["httpx-zstd", "httpx-deflate", "httpx-rawdeflate", "httpx2-deflate",
        "httpx2-rawdeflate"])
def test_content_encodings_are_decoded_in_the_tee(paid_ledger, compat, mod, encoding):
    with instrument_client(mod.Client()) as client, traced():
        reply = client.post(f"{compat.url}/encoded/{encoding}/chat/completions",
                            json={"model": "gpt-4o-mini"})
    assert reply.json() == _COMPAT_JSON  # what the caller decodes is untouched
    row = one_call(paid_ledger)
    assert (row["input_tokens"], row["output_tokens"], row["cost_status"]) == (640, 32,
                                                                               "priced")
    assert Decimal(row["cost_usd"]) == expected_cost("gpt-4o-mini", "openai",
                                                     input_tokens=640, output_tokens=32)


def test_unknown_encoding_and_malformed_body_never_break_the_caller(paid_ledger, compat):
    with instrument_client(httpx.Client()) as client:
        with traced():
            odd = client.post(f"{compat.url}/encoded/snappy/chat/completions",
                              json={"model": "gpt-4o-mini"})
        with traced():
            bad = client.post(f"{compat.url}/malformed/chat/completions",
                              json={"model": "gpt-4o-mini"})
    assert odd.json() == _COMPAT_JSON  # httpx passes an unknown encoding through
    assert bad.content == b'{"id": "x", "usage": {"prompt_tok'
    first, second = paid_ledger.calls()
    assert (first["cost_status"], first["cost_reason"]) == ("usage_unknown",
                                                            "content_encoding_snappy")
    assert (second["cost_status"], second["cost_reason"]) == ("usage_unknown",
                                                              "unreadable_response")


def test_redirect_records_the_final_response_once(paid_ledger, compat):
    compat.queue(FakeReply(usage=FakeUsage(120, 12)))
    with instrument_client(httpx.Client(follow_redirects=True)) as client, traced():
        reply = client.post(f"{compat.url}/redirect/chat/completions",
                            json={"model": "gpt-4o-mini", "messages": MESSAGES})
    assert len(reply.history) == 1
    row = one_call(paid_ledger)
    assert (row["input_tokens"], row["output_tokens"], row["cost_status"]) == (120, 12,
                                                                               "priced")


def test_non_ai_requests_are_not_recorded(paid_ledger, fake_provider):
    with instrument_client(httpx.Client()) as client, traced():
        client.get(f"{fake_provider.url}/v1/models")
        client.get(f"{fake_provider.url}/v1/chat/completions")  # not a POST
        client.post(f"{fake_provider.url}/v1/files", content=b"x")
        client.post(f"{fake_provider.url}/v1/messages/count_tokens", json={"model": "c"})
        client.post(f"{fake_provider.url}/v1/images/generations",
                    json={"model": "dall-e-3", "prompt": "a cat"})
    assert paid_ledger.calls() == []


# -- the classifier and the readers -----------------------------------------------------------


@pytest.mark.parametrize(("host", "path", "expected"), [
    ("api.openai.com", "/v1/chat/completions", ("openai", "openai.chat", "chat")),
    ("api.openai.com", "/v1/responses", ("openai", "openai.responses", "chat")),
    ("api.openai.com", "/v1/embeddings", ("openai", "openai.embeddings", "embeddings")),
    ("api.anthropic.com", "/v1/messages", ("anthropic", "anthropic.messages", "chat")),
    ("api.mistral.ai", "/v1/chat/completions", ("mistral_ai", "openai.chat", "chat")),
    ("api.mistral.ai", "/v1/fim/completions",
     ("mistral_ai", "openai.completions", "text_completion")),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:generateContent",
     ("gcp.gemini", "gemini.generate", "generate_content")),
    ("generativelanguage.googleapis.com", "/v1beta/openai/chat/completions",
     ("gcp.gemini", "openai.chat", "chat")),
    ("openrouter.ai", "/api/v1/chat/completions", ("openrouter", "openai.chat", "chat")),
    ("api.groq.com", "/openai/v1/chat/completions", ("groq", "openai.chat", "chat")),
    ("my-res.openai.azure.com", "/openai/deployments/gpt4o/chat/completions",
     ("azure.ai.openai", "openai.chat", "chat")),
    ("us-central1-aiplatform.googleapis.com",
     "/v1beta1/projects/p/locations/l/publishers/google/models/gemini-2.5-pro:"
     "streamGenerateContent", ("gcp.vertex_ai", "gemini.generate", "generate_content")),
    ("vllm.internal", "/v1/chat/completions", ("openai", "openai.chat", "chat")),
    ("gateway.internal", "/anthropic/v1/messages", ("anthropic", "anthropic.messages", "chat")),
    ("gateway.internal", "/google/v1/models/gemini-2.0-flash:generateContent",
     ("gcp.gemini", "gemini.generate", "generate_content")),
    ("gateway.internal", "/v1/embeddings", ("openai", "openai.embeddings", "embeddings")),
    ("gateway.internal", "/search/embeddings", None),  # not under /v1/ on an unknown host
    ("api.openai.com", "/v1/files", None),
    ("api.anthropic.com", "/v1/messages/count_tokens", None),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.5-flash:countTokens", None),
    ("example.com", "/index.html", None),
])
def test_classify(host, path, expected):
    route = classify("POST", host, path)
    assert (route and (route.provider, route.api, route.operation)) == expected or (
        route is None and expected is None)
    assert classify("GET", host, path) is None
    if expected is not None:
        assert classify("POST", host, path, "x_ai").provider == "x_ai"


def _gemini_sse() -> bytes:
    chunks = []
    for i in range(1, 6):
        chunk: dict[str, Any] = {"candidates": [{"content": {"parts": [{"text": "é€"}]},
                                                 "index": 0}],
                                 "usageMetadata": {"promptTokenCount": 30,
                                                   "candidatesTokenCount": i * 3},
                                 "modelVersion": GEMINI, "responseId": "r1"}
        if i == 5:
            chunk["candidates"][0]["finishReason"] = "STOP"
            chunk["usageMetadata"]["thoughtsTokenCount"] = 7
        chunks.append(sse_event(chunk, terminator=b"\r\n\r\n"))
    return b"".join(chunks)


def _openai_sse() -> bytes:
    base = {"id": "c1", "model": "gpt-4o-mini", "object": "chat.completion.chunk"}
    return b"".join([
        sse_event({**base, "choices": [{"index": 0, "delta": {"content": "é€"},
                                        "finish_reason": None}], "usage": None}),
        b":comment\r\n\r\n",
        sse_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": None}),
        sse_event({**base, "choices": [], "usage": _usage(11, 22)}),
        sse_event("[DONE]"),
    ])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), which=st.sampled_from(["gemini", "openai"]),
       encoding=st.sampled_from(["identity", "gzip", "deflate", "zstd"]))
def test_readers_give_the_same_result_under_any_chunking(data, which, encoding):
    body = _gemini_sse() if which == "gemini" else _openai_sse()
    api = "gemini.generate" if which == "gemini" else "openai.chat"
    wire = {"identity": body, "gzip": gzip.compress(body), "deflate": zlib.compress(body),
            "zstd": zstandard.ZstdCompressor().compress(body)}[encoding]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    decoder = make_decoder(encoding)
    reader = SseReader(api)
    for piece in pieces:
        for out in decoder.decode(piece):
            reader.feed(out)
    for out in decoder.flush():
        reader.feed(out)
    reader.eof()
    result = reader.result
    assert result.complete and result.ended
    if which == "gemini":
        assert (result.usage.input_tokens, result.usage.output_tokens) == (30, 22)
        assert (result.response_model, result.response_id) == (GEMINI, "r1")
    else:
        assert (result.usage.input_tokens, result.usage.output_tokens) == (11, 22)
        assert (result.response_model, result.response_id) == ("gpt-4o-mini", "c1")


def _chat_sse(*events: Any, separators: tuple[str, str] = (",", ":")) -> Any:
    reader = SseReader("openai.chat")
    for event in events:
        reader.feed(b"data: " + json.dumps(event, separators=separators).encode() + b"\n\n")
    reader.eof()
    return reader.result


def _chunk(finish: str | None = None, usage: Any = None, **extra: Any) -> dict[str, Any]:
    return {"id": "c1", "model": "gpt-4o-mini", **extra,
            "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": finish}],
            "usage": usage}


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_chat_reader_reads_every_chunk_that_matters(separators):
    # content chunks are recognised without parsing them; these are the ones that are not
    usage = {"prompt_tokens": 11, "completion_tokens": 22}
    finished = _chat_sse(_chunk(), _chunk(), _chunk("stop"), _chunk(usage=usage),
                         separators=separators)
    assert finished.complete and finished.usage.output_tokens == 22  # finish, then usage
    late = {"id": "c1", "choices": [], "usage": None}  # model and tier after the choices
    renamed = _chat_sse({**late, "model": "gpt-4o-mini"}, {**late, "model": "gpt-4o"},
                        {**late, "service_tier": "flex"}, separators=separators)
    assert (renamed.response_model, renamed.service_tier) == ("gpt-4o", "flex")
    assert not renamed.complete and renamed.usage is None
    nested = _chat_sse({"id": "c1", "x": {"choices": 1}}, {"id": "c1", "x": {"choices": 2},
                                                           "error": {"message": "down"}},
                       separators=separators)
    assert nested.error == "stream_error"
    groq = {"usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    groq_last = _chat_sse(_chunk(), {"x_groq": groq, **_chunk(usage=usage)},
                          {"x_groq": groq, **_chunk()}, separators=separators)
    assert groq_last.usage.output_tokens == 2  # the x_groq usage of the last chunk wins


def test_secrets_never_reach_the_ledger(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(10, 2)), FakeReply(usage=GEMINI_USAGE))
    gemini = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=fake_provider.url, httpx_client=instrument_client(httpx2.Client())))
    with instrument_client(httpx.Client()) as client, traced():
        client.post(f"{fake_provider.url}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {KEY}"},
                    json={"model": "gpt-4o-mini", "messages": MESSAGES})
        gemini.models.generate_content(model=GEMINI, contents="x")
    assert fake_provider.exchanges[1].request_headers["x-goog-api-key"] == KEY
    dump = json.dumps(paid_ledger.calls(), default=str)
    assert len(paid_ledger.calls()) == 2
    assert KEY not in dump and "SECRET" not in dump and "Bearer" not in dump


def _content_chunk(text: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "c1", "model": "gpt-4o-mini", **extra,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
            "usage": None}


def _count_parses(monkeypatch: Any) -> list[str]:
    """Every JSON text the httpx hook's parser decodes from now on (the list fills up)."""
    from paid_hooks_httpx import _parse

    parsed: list[str] = []
    real = _parse.loads_text

    def counting(text: str) -> Any:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(_parse, "loads_text", counting)
    return parsed


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_chat_reader_skips_only_chunks_that_differ_in_their_content_text(separators,
                                                                         monkeypatch):
    # a chunk shaped as the last one read, but for its content text, is not even decoded;
    # any other difference (model, a quote that could end the text early) is read

    parsed = _count_parses(monkeypatch)
    usage = {"prompt_tokens": 11, "completion_tokens": 22}
    # the injected finish_reason is only seen if the chunk with quotes in its text is read:
    # without it, usage on a chunk with choices would not count as final
    injected = json.dumps(_content_chunk("x"), separators=separators).replace(
        '"x"', '"x"}, "finish_reason": "stop"}, {"index": 1, "delta": {"content": "y"', 1)
    events = [json.dumps(event, separators=separators) for event in (
        _content_chunk("a"), _content_chunk("b"), _content_chunk("c"),
        _content_chunk("d", model="gpt-4o"), _content_chunk("e", model="gpt-4o"))]
    events += [injected, json.dumps(_content_chunk("f") | {"usage": usage},
                                    separators=separators)]
    reader = SseReader("openai.chat")
    for event in events:
        reader.feed(b"data: " + event.encode() + b"\n\n")
    reader.eof()
    result = reader.result
    assert json.loads(injected)["choices"][0]["finish_reason"] == "stop"
    assert result.complete and result.usage.output_tokens == 22
    assert result.response_model == "gpt-4o-mini"  # the last chunk's model
    assert len(parsed) == 4  # "a", the new model "d", the injected chunk, the usage chunk


def test_chat_reader_reads_a_chunk_whose_text_ends_with_a_backslash():
    # content text ending in a backslash could escape the quote that follows: never skipped
    base = _content_chunk("a")
    tail_escaped = json.dumps(_content_chunk("b\\"))
    reader = SseReader("openai.chat")
    handler = reader._handler
    reader.feed(b"data: " + json.dumps(base).encode() + b"\n\n")
    assert handler.quiet(b"data: " + json.dumps(_content_chunk("zz")).encode(), 6)
    assert handler.quiet(json.dumps(_content_chunk("")).encode(), 0)
    assert not handler.quiet(b"data: " + tail_escaped.encode(), 6)
    assert not handler.quiet(b"data: " + json.dumps(_content_chunk('q"')).encode(), 6)
    assert not handler.quiet(b"data: " + json.dumps(_content_chunk("a", "stop")).encode(), 6)


@pytest.mark.parametrize("text", ['{"a": 1}', '{"a": [1, 2.5, null]} \r\n\t', ' {"a": 1}', "[1]",
                                  '"s"', "{}", '{"a": 1} x', '{"a": 1}{}', "{", '{"a": 1}\x0b',
                                  "", '{"a": NaN}', '{"a": "\\u00e9"}'])
def test_loads_text_is_json_loads(text):
    from paid_hooks_httpx._routes import loads_text

    try:
        expected: Any = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            loads_text(text)
        return
    assert loads_text(text) == expected or (expected != expected)  # NaN is not NaN


def _read_sse(body: bytes, cuts: list[int]) -> Any:
    reader = SseReader("openai.chat")
    for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True):
        reader.feed(body[a:b])
    reader.eof()
    return reader.result


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_chat_reader_skips_runs_in_place_as_it_reads_them_one_by_one(separators, monkeypatch):
    # runs of content chunks are passed over inside the buffer (no split); whatever the
    # network cut, the result is the one reading every chunk gives, and only the chunks
    # that matter are parsed

    parsed = _count_parses(monkeypatch)
    usage = {"prompt_tokens": 11, "completion_tokens": 22}

    def event(chunk: Any) -> bytes:
        return b"data: " + json.dumps(chunk, separators=separators).encode() + b"\n\n"

    def no_model(chunk: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in chunk.items() if k != "model"}

    injected = event(no_model(_content_chunk("x"))).replace(
        b'"x"', b'"x"}, "finish_reason": "stop"}, {"index": 1, "delta": {"content": "y"'
        if separators[1] == ": " else
        b'"x"},"finish_reason":"stop"},{"index":1,"delta":{"content":"y"', 1)
    assert b'"stop"' in injected
    body = b"".join([
        event(_content_chunk("a")), *(event(_content_chunk(f"w{i} ")) for i in range(30)),
        event(_content_chunk("ends\\")),  # text ending in a backslash: read
        event(_content_chunk("q\"uote")),  # a quote in the text: read
        *(event(_content_chunk(f"v{i}")) for i in range(5)),
        b'data: {"id": "c1",\ndata: "model": "gpt-4o", "choices": [], "usage": null}\n\n',
        *(event(_content_chunk(f"u{i}")) for i in range(5)),
        event(_content_chunk("after", model="gpt-4o")),  # a new model inside a run
        *(event(_content_chunk(f"t{i}", model="gpt-4o")) for i in range(5)),
        injected,  # the smuggled finish reason must be seen
        event(no_model(_content_chunk("z")) | {"usage": usage}),  # usage beside choices
    ])  # no [DONE]: the usage is final only because the finish reason was seen before it
    whole = _read_sse(body, [])
    assert whole.complete and not whole.ended and whole.usage.output_tokens == 22
    assert (whole.response_model, whole.response_id) == ("gpt-4o", "c1")
    # parsed: "a", the two-line event, "u0" (the first chunk after it), "after" (a new
    # model), the injected chunk and the usage chunk; none of the 45 other content chunks
    # (the backslash and quote chunks are recognised from their text, not parsed)
    assert len(parsed) == 6
    for cuts in ([len(body) // 2], list(range(7, len(body), 97)), list(range(1, len(body)))):
        parsed.clear()
        result = _read_sse(body, cuts)
        assert vars(result) == vars(whole)
    without = _read_sse(body.replace(injected, b""), [])
    assert not without.complete and without.usage.output_tokens == 22


def test_the_hook_leaves_no_cyclic_garbage_of_its_own(paid_ledger):
    # httpx requests and responses sit in reference cycles, so every object the hook hangs
    # on them (a request ``__dict__`` read into existence, say) waits for the collector
    ids = iter(range(100))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**_COMPAT_JSON, "id": f"chatcmpl-{next(ids)}"})

    def garbage(client: httpx.Client, calls: int = 20) -> int:
        paid_hooks.flush()
        gc.collect()
        gc.disable()
        try:
            for _ in range(calls):
                client.post("https://api.openai.com/v1/chat/completions",
                            json={"model": "gpt-4o-mini"})
            paid_hooks.flush()
            return gc.collect()
        finally:
            gc.enable()

    bare = httpx.Client(transport=httpx.MockTransport(handler))
    hooked = instrument_client(httpx.Client(transport=httpx.MockTransport(handler)))
    with traced():
        garbage(bare, 3), garbage(hooked, 3)
        assert garbage(hooked) == garbage(bare)
    assert len(paid_ledger.calls()) == 23


# -- whole bodies read at once (read_body) agree with the incremental reader ---------------


def _incremental(api: str, body: bytes) -> Any:
    reader = SseReader(api)
    reader.feed(body)
    reader.eof()
    return reader.result


def _chat_stream(*chunks: Any, done: bool = True, separators: tuple[str, str] = (",", ":"),
                 ) -> bytes:
    events = [b"data: " + (c if isinstance(c, bytes) else json.dumps(
        c, separators=separators).encode()) + b"\n\n" for c in chunks]
    return b"".join(events) + (b"data: [DONE]\n\n" if done else b"")


_FULL = {"prompt_tokens": 11, "completion_tokens": 22,
         "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0}}
_USAGE_CHUNK = {"id": "c1", "model": "gpt-4o-mini", "service_tier": "default",
                "choices": [], "usage": _FULL}


def _chat_bodies() -> dict[str, bytes]:
    first = _content_chunk("") | {"service_tier": "default"}
    middle = [_content_chunk(f"w{i} ") | {"service_tier": "default"} for i in range(5)]
    finish = _content_chunk("", "stop") | {"service_tier": "default"}
    bare_usage = {"id": "c1", "choices": [], "usage": _FULL}  # no model, no tier
    return {
        "usual": _chat_stream(first, *middle, finish, _USAGE_CHUNK),
        "spaced": _chat_stream(first, *middle, finish, _USAGE_CHUNK, separators=(", ", ": ")),
        "one chunk": _chat_stream(_USAGE_CHUNK),
        "usage chunk without model and tier": _chat_stream(first, *middle, finish, bare_usage),
        "... and a model in between": _chat_stream(
            first, _content_chunk("x", model="gpt-4o"), finish, bare_usage),
        "... and an escape in between": _chat_stream(first, _content_chunk("\u00e9"), bare_usage),
        "error event in between": _chat_stream(first, {"error": {"message": "x"}}, _USAGE_CHUNK),
        "error event first": _chat_stream({"error": {"message": "x"}}, first, _USAGE_CHUNK),
        "malformed first chunk": _chat_stream(b'{"id": "c0", "choices": [', first, _USAGE_CHUNK),
        "first chunk without id": _chat_stream({"choices": []}, first, _USAGE_CHUNK),
        "usage without counts": _chat_stream(first, _USAGE_CHUNK | {"usage": {"x": 1}}),
        "groq usage": _chat_stream(first, {"id": "c1", "model": "m", "choices": [],
                                           "x_groq": {"usage": _usage(5, 6)}}),
        "odd counts": _chat_stream(first, _USAGE_CHUNK | {"usage": _usage(5, 6) | {
            "completion_tokens_details": {"reasoning_tokens": 2.0}}}),
        "no usage": _chat_stream(first, *middle, finish),
        "no [DONE]": _chat_stream(first, finish, _USAGE_CHUNK, done=False),
        "CRLF": _chat_stream(first, _USAGE_CHUNK).replace(b"\n", b"\r\n"),
        "CR inside the usage chunk": _chat_stream(first, b'{"id": "c1",\r "choices": []}',
                                                  _USAGE_CHUNK),
        "two-line usage event": _chat_stream(first).replace(b"[DONE]", b"")[:-2] + b"\n"
        + _chat_stream(_USAGE_CHUNK),
        "comment first": b": keep-alive\n\n" + _chat_stream(first, _USAGE_CHUNK),
        "cut mid-event": _chat_stream(first, _USAGE_CHUNK, done=False)[:-20],
    }


@pytest.mark.parametrize("name", list(_chat_bodies()))
def test_whole_chat_body_reads_as_every_chunk_does(name):
    from paid_hooks_httpx._parse import read_body

    body = _chat_bodies()[name]
    expected = _incremental("openai.chat", body)
    result = read_body("openai.chat", "text/event-stream", body, eof=True)
    if expected.complete:  # recorded as finished: an error event before the usage is moot
        result = dataclasses.replace(result, error=expected.error)
    assert result == expected


def test_whole_chat_body_reads_two_chunks_only(monkeypatch):
    # the usual stream: its first chunk (the id) and its usage chunk are all that is decoded
    from paid_hooks_httpx import _parse

    parsed = _count_parses(monkeypatch)
    result = _parse.read_body("openai.chat", "text/event-stream", _chat_bodies()["usual"],
                              eof=True)
    assert len(parsed) == 2
    assert (result.usage.input_tokens, result.usage.output_tokens,
            result.usage.cache_read_tokens, result.usage.reasoning_tokens) == (11, 22, 3, 4)
    assert (result.response_id, result.response_model, result.service_tier) == (
        "c1", "gpt-4o-mini", "default")
    assert result.complete and result.ended


def _anthropic_stream(*events: tuple[str | None, Any]) -> bytes:
    return b"".join(sse_event(data, name) for name, data in events)


_START = ("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "model": "claude-x", "usage": {
        "input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 5,
        "cache_creation_input_tokens": 2, "service_tier": "standard",
        "cache_creation": {"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 0}}}})
_DELTA = ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                  "delta": {"type": "text_delta", "text": "hi"}})
_END = [("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 30}}),
        ("message_stop", {"type": "message_stop"})]


def _anthropic_bodies() -> dict[str, bytes]:
    block = [("content_block_start", {"type": "content_block_start", "index": 0}),
             ("ping", {"type": "ping"}), _DELTA, _DELTA,
             ("content_block_stop", {"type": "content_block_stop", "index": 0})]
    usual = _anthropic_stream(_START, *block, *_END)
    return {
        "usual": usual,
        "thinking and web search": _anthropic_stream(_START, *block, ("message_delta", {
            "type": "message_delta", "usage": {"output_tokens": 30, "output_tokens_details": {
                "thinking_tokens": 7}, "server_tool_use": {"web_search_requests": 2}}}),
            _END[1]),
        "error event": _anthropic_stream(_START, _DELTA, ("error", {"type": "error"})),
        "data-only event": _anthropic_stream(_START, _DELTA, (None, _END[0][1]), _END[1]),
        "second event line": usual.replace(b"event: ping\n",
                                           b"event: ping\nevent: message_delta\n"),
        "typed otherwise": _anthropic_stream(_START, ("ping", _END[0][1]), _END[1]),
        "unknown name": _anthropic_stream(_START, ("content_block_x", _DELTA[1]), *_END),
        "no stop": _anthropic_stream(_START, *block, _END[0]),
        "CRLF": usual.replace(b"\n", b"\r\n"),
        "cut mid-event": usual[:-10],
        "malformed delta": usual.replace(b'"output_tokens": 30}', b'"output_tokens": 30'),
    }


@pytest.mark.parametrize("name", list(_anthropic_bodies()))
def test_whole_anthropic_body_reads_as_every_event_does(name):
    from paid_hooks_httpx._parse import read_body

    body = _anthropic_bodies()[name]
    expected = _incremental("anthropic.messages", body)
    assert read_body("anthropic.messages", "text/event-stream", body, eof=True) == expected


def test_whole_anthropic_body_passes_over_the_deltas_unread(monkeypatch):
    from paid_hooks_httpx import _parse

    parsed = _count_parses(monkeypatch)
    result = _parse.read_body("anthropic.messages", "text/event-stream",
                              _anthropic_bodies()["usual"], eof=True)
    assert len(parsed) == 3  # message_start, message_delta, message_stop
    assert (result.usage.input_tokens, result.usage.output_tokens,
            result.usage.cache_read_tokens, result.usage.cache_write_tokens) == (17, 30, 5, 2)
    assert (result.response_id, result.response_model, result.service_tier) == (
        "msg_1", "claude-x", "standard")


@settings(max_examples=40, deadline=None)
@given(data=st.data(), which=st.sampled_from(["usual", "spaced", "CRLF", "no [DONE]"]))
def test_a_body_over_the_whole_limit_is_read_incrementally(data, which, monkeypatch_module):
    # past WHOLE_LIMIT the tap hands the body to the incremental reader, wherever the cut
    from paid_hooks_httpx import _recorder

    body = _chat_bodies()[which]
    limit = data.draw(st.integers(0, len(body)))
    monkeypatch_module.setattr(_recorder, "WHOLE_LIMIT", limit)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    handle = _Handle()
    tap = _recorder.BodyTap(handle, "openai.chat", 200, "text/event-stream", None)  # type: ignore[arg-type]
    for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True):
        tap.feed(body[a:b])
    tap.end()
    expected = _incremental("openai.chat", body)
    assert handle.calls == [("finish", expected.usage, expected.response_model)] if \
        expected.complete else handle.calls[0][0] == "usage_unknown"
    assert (tap._reader is None) == (len(body) <= limit)


class _Handle:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def finish(self, usage: Any, **kw: Any) -> None:
        self.calls.append(("finish", usage, kw["response_model"]))

    def usage_unknown(self, reason: str, **kw: Any) -> None:
        self.calls.append(("usage_unknown", reason))

    def fail(self, *a: Any, **kw: Any) -> None:
        self.calls.append(("fail",))

    def finish_later(self, read: Any, source: Any) -> None:
        # what the pipeline worker does with it (recorder._LaterCall), at once
        reading = read(source)
        if reading.usage is not None:
            self.finish(reading.usage, response_model=reading.response_model)
        else:
            self.usage_unknown(reading.unknown_reason or "not_reported")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch
