"""The Gemini plugin: the real ``google-genai`` SDK against the fake provider, exact rows.

Every recording test runs through ``PaidGemini(genai.Client(...))`` and through
``paid_hooks.instrument("gemini")`` on a plain client; async tests also run on both
async transports of the SDK: aiohttp (its default whenever aiohttp is installed) and
httpx. Expected costs come straight from genai-prices (provider ``google``).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import httpx2
import pytest
from google import genai
from google.genai import errors, types
from google.genai.models import AsyncModels, Models

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks_gemini import PaidGemini

pytestmark = pytest.mark.filterwarnings(  # google-genai's own aiohttp session subclass
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

API_KEY = "AIza-gemini-SECRET-91be"
MODEL = "gemini-2.5-flash"
PROMPT = "Summarise the call transcript."

PATCHED = [(cls, name) for cls in (Models, AsyncModels)
           for name in ("_generate_content", "_generate_content_stream", "_embed_content")]


def price(model: str, **usage: int) -> Decimal:
    """The cost of ``usage`` straight from genai-prices."""
    result = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="google")
    return Decimal(result.total_price)


def new_client(fake: FakeProviderServer, transport: str = "aiohttp") -> genai.Client:
    options = types.HttpOptions(base_url=fake.url)
    if transport == "httpx":
        options = types.HttpOptions(base_url=fake.url, httpx_async_client=httpx2.AsyncClient())
    return genai.Client(api_key=API_KEY, http_options=options)


@pytest.fixture
def instrumented(paid_ledger: LedgerView) -> Iterator[None]:
    assert "gemini" in paid_hooks.instrument("gemini")
    yield
    paid_hooks.uninstrument("gemini")


@pytest.fixture
def recorded(paid_ledger: LedgerView) -> Iterator[list[paid_hooks.PricedCall]]:
    """Every call record the plugins submit, before the ledger's de-duplication."""
    seen: list[paid_hooks.PricedCall] = []

    class Observer:
        @paid_hooks.hookimpl
        def call_recorded(self, record: paid_hooks.PricedCall) -> None:
            seen.append(record)

    name = paid_hooks.register_plugin(Observer(), name="test-gemini-observer")
    yield seen
    paid_hooks.unregister_plugin(name)


@pytest.fixture(params=["wrapper", "instrument"])
def client(request: pytest.FixtureRequest, fake_provider: FakeProviderServer,
           paid_ledger: LedgerView) -> Any:
    """A recording sync client: the wrapper, or a plain client with auto-instrumentation."""
    raw = new_client(fake_provider)
    if request.param == "wrapper":
        return PaidGemini(raw)
    request.getfixturevalue("instrumented")
    return raw


@pytest.fixture(params=["wrapper-aiohttp", "instrument-aiohttp", "wrapper-httpx",
                        "instrument-httpx"])
async def aclient(request: pytest.FixtureRequest, fake_provider: FakeProviderServer,
                  paid_ledger: LedgerView) -> AsyncIterator[Any]:
    """A recording ``client.aio`` on the aiohttp (default) or the httpx transport."""
    how, transport = request.param.split("-")
    raw = new_client(fake_provider, transport)
    assert raw.aio._api_client._use_aiohttp() is (transport == "aiohttp")
    if how == "wrapper":
        yield PaidGemini(raw).aio
    else:
        request.getfixturevalue("instrumented")
        yield raw.aio
    await raw.aio.aclose()


def traced(fn: Any) -> Any:
    with paid_hooks.paid_tracing("cust-7", external_agent_id="call-summariser"):
        result = fn()
        paid_hooks.signal("call_summarised", enable_cost_tracing=True)
    return result


async def traced_async(fn: Any) -> Any:
    with paid_hooks.paid_tracing("cust-7", external_agent_id="call-summariser"):
        result = await fn()
        paid_hooks.signal("call_summarised", enable_cost_tracing=True)
    return result


def only_row(ledger: LedgerView) -> dict[str, Any]:
    rows = ledger.calls()
    assert len(rows) == 1, rows
    return rows[0]


# Canonical usage of a thinking call that used a cache and a tool: the fake renders it
# natively (prompt 1150 + toolUse 50, candidates 200 + thoughts 100).
USAGE = FakeUsage(1200, 300, cache_read_tokens=200, reasoning_tokens=100)
EXTRA = {"tool_use_prompt_tokens": 50}
EXPECTED = price(MODEL, input_tokens=1200, output_tokens=300, cache_read_tokens=200,
                 output_reasoning_tokens=100)


def assert_row(row: dict[str, Any], fake: FakeProviderServer, *, streaming: bool) -> None:
    [exchange] = fake.exchanges
    assert row["provider"] == "gcp.gemini"
    assert row["operation"] == "generate_content"
    assert row["captured_by"] == "gemini"
    assert row["model"] == MODEL
    assert row["response_id"] == exchange.response_id
    assert row["streaming"] == int(streaming)
    assert row["external_customer_id"] == "cust-7"
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 300)
    assert (row["cache_read_tokens"], row["reasoning_tokens"]) == (200, 100)
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == EXPECTED


# -- generate_content ------------------------------------------------------------------


def test_generate_content(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, extra=EXTRA))
    response = traced(lambda: client.models.generate_content(model=MODEL, contents=PROMPT))
    native = response.usage_metadata
    assert (native.prompt_token_count, native.candidates_token_count) == (1150, 200), \
        "the SDK sees Gemini's own (exclusive) numbers"
    assert_row(only_row(paid_ledger), fake_provider, streaming=False)
    [signal] = paid_ledger.signals()
    assert signal["ai_calls"] == 1 and Decimal(signal["cost_usd"]) == EXPECTED


async def test_generate_content_async(aclient, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, extra=EXTRA))
    await traced_async(lambda: aclient.models.generate_content(model=MODEL, contents=PROMPT))
    assert_row(only_row(paid_ledger), fake_provider, streaming=False)


@pytest.mark.parametrize(("usage", "extra", "expected"), [
    (FakeUsage(1000, 400, reasoning_tokens=300), {},
     {"input_tokens": 1000, "output_tokens": 400, "output_reasoning_tokens": 300}),
    (FakeUsage(5000, 80, cache_read_tokens=4096), {},
     {"input_tokens": 5000, "output_tokens": 80, "cache_read_tokens": 4096}),
    (FakeUsage(900, 60), {"tool_use_prompt_tokens": 400},
     {"input_tokens": 900, "output_tokens": 60}),
    (FakeUsage(2000, 100), {"prompt_audio_tokens": 1500},
     {"input_tokens": 2000, "output_tokens": 100, "input_audio_tokens": 1500}),
], ids=["thoughts", "cached", "tool-use-prompt", "audio-prompt"])
def test_usage_normalisation(client, paid_ledger, fake_provider, usage, extra, expected):
    fake_provider.queue(FakeReply(usage=usage, extra=extra))
    traced(lambda: client.models.generate_content(model=MODEL, contents=PROMPT))
    row = only_row(paid_ledger)
    assert (row["input_tokens"], row["output_tokens"]) == (expected["input_tokens"],
                                                           expected["output_tokens"])
    assert row["reasoning_tokens"] == expected.get("output_reasoning_tokens")
    assert row["cache_read_tokens"] == expected.get("cache_read_tokens")
    if "input_audio_tokens" in expected:
        assert f'"input_audio_tokens":{expected["input_audio_tokens"]}' in row["usage_json"]
    assert Decimal(row["cost_usd"]) == price(MODEL, **expected)


def test_model_comes_from_model_version(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(700, 90), model="gemini-2.5-flash-lite"))
    traced(lambda: client.models.generate_content(model="models/gemini-2.5-flash",
                                                  contents=PROMPT))
    row = only_row(paid_ledger)
    assert (row["request_model"], row["model"]) == ("gemini-2.5-flash", "gemini-2.5-flash-lite")
    assert Decimal(row["cost_usd"]) == price("gemini-2.5-flash-lite", input_tokens=700,
                                             output_tokens=90)


def test_long_prompt_is_priced_at_the_upper_tier(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(300_000, 2_000)))
    traced(lambda: client.models.generate_content(model="gemini-2.5-pro", contents=PROMPT))
    expected = price("gemini-2.5-pro", input_tokens=300_000, output_tokens=2_000)
    assert expected > price("gemini-2.5-pro", input_tokens=199_000, output_tokens=2_000) * 3 / 2
    assert Decimal(only_row(paid_ledger)["cost_usd"]) == expected


def test_automatic_function_calling_records_every_request(client, paid_ledger,
                                                          fake_provider):
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    call = {"name": "get_weather", "args": {"city": "Paris"}}
    fake_provider.queue(FakeReply(usage=FakeUsage(300, 20), extra={"function_call": call}),
                        FakeReply(usage=FakeUsage(350, 40)))
    config = types.GenerateContentConfig(tools=[get_weather])
    response = traced(lambda: client.models.generate_content(model=MODEL, contents=PROMPT,
                                                             config=config))
    assert response.usage_metadata.prompt_token_count == 350, "the SDK returns the last only"
    rows = sorted(paid_ledger.calls(), key=lambda r: r["input_tokens"])
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(300, 20), (350, 40)]
    assert paid_ledger.total_cost() == (price(MODEL, input_tokens=300, output_tokens=20)
                                        + price(MODEL, input_tokens=350, output_tokens=40))


def test_chats_are_recorded(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(640, 33)))
    chat = client.chats.create(model=MODEL)
    traced(lambda: chat.send_message("Hello"))
    row = only_row(paid_ledger)
    assert (row["input_tokens"], row["output_tokens"]) == (640, 33)


def test_vertex_ai_client_is_recorded_as_vertex(fake_provider, paid_ledger, instrumented):
    vertex = genai.Client(vertexai=True, api_key=API_KEY,
                          http_options=types.HttpOptions(base_url=fake_provider.url))
    fake_provider.queue(FakeReply(usage=FakeUsage(800, 70)))
    traced(lambda: vertex.models.generate_content(model=MODEL, contents=PROMPT))
    assert "/v1beta1/publishers/google/models/" in fake_provider.exchanges[0].path
    row = only_row(paid_ledger)
    assert row["provider"] == "gcp.vertex_ai"
    assert Decimal(row["cost_usd"]) == price(MODEL, input_tokens=800, output_tokens=70)


# -- streaming -------------------------------------------------------------------------


def test_stream_takes_the_last_chunk_usage(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, extra=EXTRA, text="x" * 60))
    chunks = traced(lambda: list(client.models.generate_content_stream(model=MODEL,
                                                                        contents=PROMPT)))
    assert len(chunks) == 5
    partial = [c.usage_metadata.candidates_token_count or 0 for c in chunks]
    assert partial[-1] == 200 and all(p < 200 for p in partial[:-1]), "only the last is complete"
    assert sum(c.usage_metadata.prompt_token_count for c in chunks) > 1200, "summing over-counts"
    assert_row(only_row(paid_ledger), fake_provider, streaming=True)


async def test_stream_async(aclient, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, extra=EXTRA, text="x" * 60))

    async def run() -> list[Any]:
        stream = await aclient.models.generate_content_stream(model=MODEL, contents=PROMPT)
        return [chunk async for chunk in stream]

    chunks = await traced_async(run)
    assert len(chunks) == 5
    assert_row(only_row(paid_ledger), fake_provider, streaming=True)


def test_stream_left_right_after_the_last_chunk_is_priced(client, paid_ledger,
                                                          fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, extra=EXTRA))

    def run() -> None:
        stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
        for chunk in stream:
            if chunk.candidates[0].finish_reason is not None:
                break
        del stream
        gc.collect()

    traced(run)
    assert_row(only_row(paid_ledger), fake_provider, streaming=True)


def test_stream_abandoned_early_is_usage_unknown(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 60))

    def run() -> None:
        stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
        next(stream)
        del stream
        gc.collect()

    traced(run)
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["cost_usd"] is None and row["input_tokens"] is None
    assert row["response_id"] == fake_provider.exchanges[0].response_id


async def test_async_stream_abandoned_early_is_usage_unknown(aclient, paid_ledger,
                                                             fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 60))

    async def run() -> None:
        stream = await aclient.models.generate_content_stream(model=MODEL, contents=PROMPT)
        async for _ in stream:
            break
        await stream.aclose()
        for _ in range(20):  # the SDK's inner generators are closed by the event loop
            await asyncio.sleep(0)

    await traced_async(run)
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_stream_cut_by_the_server_is_usage_unknown(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 60, cut_stream_after=2))
    chunks = traced(lambda: list(client.models.generate_content_stream(model=MODEL,
                                                                        contents=PROMPT)))
    assert len(chunks) == 2 and chunks[-1].usage_metadata is not None
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


# -- embeddings ------------------------------------------------------------------------


def test_embed_content(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(42, 0)))
    traced(lambda: client.models.embed_content(model="gemini-embedding-001",
                                               contents=["first", "second"]))
    assert fake_provider.exchanges[0].path.endswith(":batchEmbedContents")
    row = only_row(paid_ledger)
    assert (row["operation"], row["model"]) == ("embeddings", "gemini-embedding-001")
    assert (row["input_tokens"], row["output_tokens"]) == (42, 0)
    assert Decimal(row["cost_usd"]) == price("gemini-embedding-001", input_tokens=42)


async def test_embed_content_async(aclient, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(64, 0)))
    await traced_async(lambda: aclient.models.embed_content(model="gemini-embedding-001",
                                                            contents="one text"))
    row = only_row(paid_ledger)
    assert row["input_tokens"] == 64
    assert Decimal(row["cost_usd"]) == price("gemini-embedding-001", input_tokens=64)


def test_embedding_without_usage_is_not_zero(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(omit_usage=True))
    traced(lambda: client.models.embed_content(model="gemini-embedding-001", contents="x"))
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")


# -- errors ----------------------------------------------------------------------------


def test_error_reaches_the_caller_unchanged_and_costs_nothing(client, paid_ledger,
                                                              fake_provider):
    fake_provider.queue(FakeReply(status=400, error_message="contents must not be empty"))
    with pytest.raises(errors.ClientError) as caught:
        traced(lambda: client.models.generate_content(model=MODEL, contents=PROMPT))
    assert type(caught.value) is errors.ClientError
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.message == "contents must not be empty"
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["call_status"], row["error_type"]) == (
        "no_charge", "error", "ClientError")
    assert row["cost_usd"] is None


async def test_error_async(aclient, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=429, error_message="quota"))
    with pytest.raises(errors.ClientError, match="RESOURCE_EXHAUSTED"):
        await traced_async(lambda: aclient.models.generate_content(model=MODEL,
                                                                   contents=PROMPT))
    assert only_row(paid_ledger)["cost_status"] == "no_charge"


def test_stream_error(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=503, error_message="overloaded"))
    with pytest.raises(errors.ServerError, match="overloaded"):
        traced(lambda: list(client.models.generate_content_stream(model=MODEL,
                                                                  contents=PROMPT)))
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["streaming"]) == ("no_charge", 1)


async def test_stream_error_async(aclient, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=400))

    async def run() -> None:
        stream = await aclient.models.generate_content_stream(model=MODEL, contents=PROMPT)
        async for _ in stream:  # the SDK sends the request on the first read
            pass

    with pytest.raises(errors.ClientError):
        await traced_async(run)
    assert only_row(paid_ledger)["cost_status"] == "no_charge"


# -- exactly once, uninstrument, secrets -----------------------------------------------


async def test_wrapper_and_instrumentation_together_record_once(fake_provider, paid_ledger,
                                                                instrumented, recorded):
    raw = new_client(fake_provider)
    client = PaidGemini(raw)
    fake_provider.queue(*[FakeReply(usage=USAGE, extra=EXTRA) for _ in range(4)])

    async def run() -> None:
        client.models.generate_content(model=MODEL, contents=PROMPT)
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
        await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
        [_ async for _ in stream]

    await traced_async(run)
    await raw.aio.aclose()
    rows = paid_ledger.calls()
    assert len(fake_provider.exchanges) == 4 and len(rows) == 4
    assert all(Decimal(r["cost_usd"]) == EXPECTED for r in rows)
    assert len(recorded) == 4, "recorded once, not once per layer (and then de-duplicated)"


def test_uninstrument_restores_the_sdk(fake_provider, paid_ledger):
    before = {(cls, name): cls.__dict__[name] for cls, name in PATCHED}
    paid_hooks.instrument("gemini")
    patched = {(cls, name): cls.__dict__[name] for cls, name in PATCHED}
    paid_hooks.instrument("gemini")  # idempotent: not wrapped twice
    assert {(c, n): c.__dict__[n] for c, n in PATCHED} == patched
    assert all(patched[k] is not before[k] for k in PATCHED)
    paid_hooks.uninstrument("gemini")
    paid_hooks.uninstrument("gemini")
    assert all(cls.__dict__[name] is before[(cls, name)] for cls, name in PATCHED)

    raw = new_client(fake_provider)
    traced(lambda: raw.models.generate_content(model=MODEL, contents=PROMPT))
    assert len(fake_provider.exchanges) == 1
    assert paid_ledger.calls() == [], "a plain client is not recorded once uninstrumented"


def test_no_api_key_in_the_ledger(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE),
                        FakeReply(status=403, error_message="API key not valid"))

    def run() -> None:
        client.models.generate_content(model=MODEL, contents=PROMPT)
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
        with pytest.raises(errors.ClientError):
            client.models.generate_content(model=MODEL, contents=PROMPT)

    traced(run)
    assert all(e.request_headers["x-goog-api-key"] == API_KEY for e in fake_provider.exchanges)
    rows = paid_ledger.calls()
    assert len(rows) == 3
    for row in rows:
        for value in row.values():
            assert API_KEY not in str(value)
    database = Path(paid_ledger.url.removeprefix("sqlite:///"))
    files = list(database.parent.glob(database.name + "*"))
    assert database in files
    for path in files:
        assert API_KEY.encode() not in path.read_bytes()


# -- the wrapper itself ----------------------------------------------------------------


def test_wrapper_is_transparent(fake_provider):
    raw = new_client(fake_provider)
    client = PaidGemini(raw)
    assert isinstance(client.models, Models) and isinstance(client.aio.models, AsyncModels)
    assert client.models._api_client is raw.models._api_client
    assert client.files is raw.files  # untouched resources pass through
    with client as entered:
        assert entered is client


def test_plugin_import_does_not_import_the_sdk():
    code = ("import sys, paid_hooks_gemini; "
            "assert not any(m.startswith('google.genai') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_instrument_raises_import_error_without_the_sdk(monkeypatch):
    import paid_hooks_gemini

    monkeypatch.setitem(sys.modules, "google.genai.models", None)
    with pytest.raises(ImportError):
        paid_hooks_gemini.instrument()
    assert Models.__dict__["_generate_content"].__qualname__ == "Models._generate_content"
