"""The Mistral plugin: the real ``mistralai`` SDK against the fake provider, exact ledger rows.

Every recording test runs twice: through ``PaidMistral(Mistral(...))`` and through
``paid_hooks.instrument("mistral")`` on a plain client. Expected costs come straight from
genai-prices (provider ``mistral``), independent of paid-hooks.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pydantic
import pytest
from mistralai.client import Mistral, errors
from mistralai.client.chat import Chat
from mistralai.client.embeddings import Embeddings
from mistralai.client.ocr import Ocr

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks.testing.fake.mistral_format import mistral_url
from paid_hooks_mistral import PaidMistral

API_KEY = "mistral-SECRET-key-7d1f0c"
MODEL = "mistral-small-latest"
MESSAGES = [{"role": "user", "content": "Classify this support ticket."}]
DOCUMENT = {"type": "document_url", "document_url": "https://example.com/invoice.pdf"}


def price(model: str, **usage: int) -> Decimal:
    """The cost of ``usage`` straight from genai-prices."""
    result = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="mistral")
    return Decimal(result.total_price)


@pytest.fixture
def raw(fake_provider: FakeProviderServer) -> Mistral:
    return Mistral(api_key=API_KEY, server_url=mistral_url(fake_provider))


@pytest.fixture
def instrumented(paid_ledger: LedgerView) -> Iterator[None]:
    assert "mistral" in paid_hooks.instrument("mistral")
    yield
    paid_hooks.uninstrument("mistral")


@pytest.fixture(params=["wrapper", "instrument"])
def client(request: pytest.FixtureRequest, raw: Mistral, paid_ledger: LedgerView) -> Any:
    """A recording client: the wrapper, or a plain client with auto-instrumentation."""
    if request.param == "wrapper":
        return PaidMistral(raw)
    request.getfixturevalue("instrumented")
    return raw


@pytest.fixture
def recorded(paid_ledger: LedgerView) -> Iterator[list[paid_hooks.PricedCall]]:
    """Every call record the plugins submit, before the ledger's de-duplication."""
    seen: list[paid_hooks.PricedCall] = []

    class Observer:
        @paid_hooks.hookimpl
        def call_recorded(self, record: paid_hooks.PricedCall) -> None:
            seen.append(record)

    name = paid_hooks.register_plugin(Observer(), name="test-mistral-observer")
    yield seen
    paid_hooks.unregister_plugin(name)


def traced(fn: Any) -> Any:
    with paid_hooks.paid_tracing("cust-42", external_agent_id="support-agent"):
        result = fn()
        paid_hooks.signal("ticket_classified", enable_cost_tracing=True)
    return result


async def traced_async(fn: Any) -> Any:
    with paid_hooks.paid_tracing("cust-42", external_agent_id="support-agent"):
        result = await fn()
        paid_hooks.signal("ticket_classified", enable_cost_tracing=True)
    return result


def only_row(ledger: LedgerView) -> dict[str, Any]:
    rows = ledger.calls()
    assert len(rows) == 1, rows
    return rows[0]


def assert_chat_row(row: dict[str, Any], fake: FakeProviderServer, usage: FakeUsage, *,
                    streaming: bool) -> None:
    [exchange] = fake.exchanges
    assert row["provider"] == "mistral_ai"
    assert row["operation"] == "chat"
    assert row["captured_by"] == "mistral"
    assert row["model"] == MODEL
    assert row["response_id"] == exchange.response_id
    assert row["streaming"] == int(streaming)
    assert row["external_customer_id"] == "cust-42"
    assert row["input_tokens"] == usage.input_tokens
    assert row["output_tokens"] == usage.output_tokens
    assert row["cache_read_tokens"] == usage.cache_read_tokens
    assert row["reasoning_tokens"] == usage.reasoning_tokens
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == price(
        MODEL, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        output_reasoning_tokens=usage.reasoning_tokens)


USAGE = FakeUsage(1200, 300, cache_read_tokens=256, reasoning_tokens=40)


# -- chat ------------------------------------------------------------------------------


def test_chat_complete(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE))
    reply = traced(lambda: client.chat.complete(model=MODEL, messages=MESSAGES))
    assert reply.usage.prompt_tokens == 1200
    assert_chat_row(only_row(paid_ledger), fake_provider, USAGE, streaming=False)
    [signal] = paid_ledger.signals()
    assert signal["ai_calls"] == 1
    assert Decimal(signal["cost_usd"]) == Decimal(only_row(paid_ledger)["cost_usd"])


async def test_chat_complete_async(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE))
    await traced_async(lambda: client.chat.complete_async(model=MODEL, messages=MESSAGES))
    assert_chat_row(only_row(paid_ledger), fake_provider, USAGE, streaming=False)


def test_chat_stream_usage_from_final_chunk(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE))

    def run() -> list[Any]:
        with client.chat.stream(model=MODEL, messages=MESSAGES) as stream:
            return list(stream)

    events = traced(run)
    assert len(events) >= 3
    assert all(e.data.usage is None for e in events[:-1]), "only the final chunk has usage"
    assert events[-1].data.usage.completion_tokens == 300
    assert_chat_row(only_row(paid_ledger), fake_provider, USAGE, streaming=True)


async def test_chat_stream_async(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE))

    async def run() -> list[Any]:
        stream = await client.chat.stream_async(model=MODEL, messages=MESSAGES)
        async with stream:
            return [event async for event in stream]

    events = await traced_async(run)
    assert events[-1].data.usage is not None
    assert_chat_row(only_row(paid_ledger), fake_provider, USAGE, streaming=True)


def test_stream_left_right_after_the_usage_chunk_is_priced(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE))

    def run() -> None:
        stream = client.chat.stream(model=MODEL, messages=MESSAGES)
        for event in stream:
            if event.data.choices[0].finish_reason is not None:
                break  # never reads [DONE], never closes
        del stream
        gc.collect()

    traced(run)
    assert_chat_row(only_row(paid_ledger), fake_provider, USAGE, streaming=True)


def test_stream_abandoned_early_is_usage_unknown(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 120))

    def run() -> None:
        stream = client.chat.stream(model=MODEL, messages=MESSAGES)
        next(iter(stream))
        del stream  # abandoned without close()
        gc.collect()

    traced(run)
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")
    assert row["cost_usd"] is None and row["input_tokens"] is None
    assert row["response_id"] == fake_provider.exchanges[0].response_id


async def test_async_stream_closed_early_is_usage_unknown(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 120))

    async def run() -> None:
        stream = await client.chat.stream_async(model=MODEL, messages=MESSAGES)
        async with stream:
            async for _ in stream:
                break

    await traced_async(run)
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_stream_cut_by_the_server_is_usage_unknown(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 120, cut_stream_after=3))
    events = traced(lambda: list(client.chat.stream(model=MODEL, messages=MESSAGES)))
    assert len(events) == 3
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_finished_stream_without_usage_is_not_reported(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE, omit_usage=True))
    traced(lambda: list(client.chat.stream(model=MODEL, messages=MESSAGES)))
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")


def test_service_tier_is_kept(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10), service_tier="priority"))
    traced(lambda: client.chat.complete(model=MODEL, messages=MESSAGES))
    assert only_row(paid_ledger)["service_tier"] == "priority"


def test_chat_parse_goes_through_complete_and_is_recorded(client, paid_ledger, fake_provider):
    class Verdict(pydantic.BaseModel):
        answer: str

    usage = FakeUsage(400, 12)
    fake_provider.queue(FakeReply(usage=usage, text='{"answer": "refund"}'))
    parsed = traced(lambda: client.chat.parse(response_format=Verdict, model=MODEL,
                                              messages=MESSAGES))
    assert parsed.choices[0].message.parsed == Verdict(answer="refund")
    row = only_row(paid_ledger)
    assert (row["input_tokens"], row["output_tokens"]) == (400, 12)
    assert Decimal(row["cost_usd"]) == price(MODEL, input_tokens=400, output_tokens=12)


async def test_chat_parse_async_is_recorded(client, paid_ledger, fake_provider):
    class Verdict(pydantic.BaseModel):
        answer: str

    fake_provider.queue(FakeReply(usage=FakeUsage(410, 14), text='{"answer": "escalate"}'))
    parsed = await traced_async(lambda: client.chat.parse_async(
        response_format=Verdict, model=MODEL, messages=MESSAGES))
    assert parsed.choices[0].message.parsed == Verdict(answer="escalate")
    row = only_row(paid_ledger)
    assert Decimal(row["cost_usd"]) == price(MODEL, input_tokens=410, output_tokens=14)


# -- embeddings and OCR ----------------------------------------------------------------


def test_embeddings(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(37, 0)))
    traced(lambda: client.embeddings.create(model="mistral-embed", inputs=["a", "b"]))
    row = only_row(paid_ledger)
    assert (row["operation"], row["model"]) == ("embeddings", "mistral-embed")
    assert (row["input_tokens"], row["output_tokens"]) == (37, 0)
    assert Decimal(row["cost_usd"]) == price("mistral-embed", input_tokens=37, output_tokens=0)


async def test_embeddings_async(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(51, 0)))
    await traced_async(lambda: client.embeddings.create_async(model="mistral-embed",
                                                              inputs="one text"))
    row = only_row(paid_ledger)
    assert row["input_tokens"] == 51
    assert Decimal(row["cost_usd"]) == price("mistral-embed", input_tokens=51, output_tokens=0)


def test_ocr_pages(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(extra={"pages": 7}))
    result = traced(lambda: client.ocr.process(model="mistral-ocr-latest", document=DOCUMENT))
    assert len(result.pages) == 7
    row = only_row(paid_ledger)
    assert (row["operation"], row["model"], row["cost_status"]) == (
        "ocr", "mistral-ocr-latest", "priced")
    assert '"input_document_pages":7' in row["usage_json"]
    assert Decimal(row["cost_usd"]) == price("mistral-ocr-latest", input_document_pages=7)


async def test_ocr_annotated_pages_async(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(extra={"pages": 3}))
    schema = {"type": "json_schema", "json_schema": {
        "name": "invoice", "schema": {"type": "object",
                                      "properties": {"total": {"type": "number"}}}}}
    await traced_async(lambda: client.ocr.process_async(
        model="mistral-ocr-latest", document=DOCUMENT, document_annotation_format=schema))
    row = only_row(paid_ledger)
    assert '"input_annotated_document_pages":3' in row["usage_json"]
    assert Decimal(row["cost_usd"]) == price("mistral-ocr-latest", input_document_pages=3,
                                             input_annotated_document_pages=3)


# -- errors ----------------------------------------------------------------------------


def test_error_reaches_the_caller_unchanged_and_costs_nothing(client, paid_ledger,
                                                              fake_provider):
    fake_provider.queue(FakeReply(status=400, error_message="bad temperature"))
    with pytest.raises(errors.SDKError) as caught:
        traced(lambda: client.chat.complete(model=MODEL, messages=MESSAGES))
    assert type(caught.value) is errors.SDKError
    assert caught.value.status_code == 400 and "bad temperature" in caught.value.body
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["call_status"]) == ("no_charge", "error")
    assert row["error_type"] == "SDKError" and row["cost_usd"] is None


async def test_validation_error_async(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=422))
    with pytest.raises(errors.HTTPValidationError):
        await traced_async(lambda: client.chat.complete_async(model=MODEL, messages=MESSAGES))
    assert only_row(paid_ledger)["cost_status"] == "no_charge"


def test_stream_error(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=429, error_message="slow down"))
    with pytest.raises(errors.SDKError, match="429"):
        traced(lambda: client.chat.stream(model=MODEL, messages=MESSAGES))
    row = only_row(paid_ledger)
    assert (row["cost_status"], row["streaming"]) == ("no_charge", 1)


async def test_stream_error_async(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(status=500))
    with pytest.raises(errors.SDKError, match="500"):
        await traced_async(lambda: client.chat.stream_async(model=MODEL, messages=MESSAGES))
    assert only_row(paid_ledger)["cost_status"] == "no_charge"


# -- exactly once, uninstrument, secrets -----------------------------------------------


def test_wrapper_and_instrumentation_together_record_once(raw, instrumented, paid_ledger,
                                                          fake_provider, recorded):
    client = PaidMistral(raw)
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))

    def run() -> None:
        client.chat.complete(model=MODEL, messages=MESSAGES)
        list(client.chat.stream(model=MODEL, messages=MESSAGES))

    traced(run)
    rows = paid_ledger.calls()
    assert len(fake_provider.exchanges) == 2
    assert len(rows) == 2
    assert {r["response_id"] for r in rows} == {e.response_id for e in fake_provider.exchanges}
    assert all(r["cost_status"] == "priced" for r in rows)
    assert len(recorded) == 2, "recorded once, not once per layer (and then de-duplicated)"


def test_uninstrument_restores_the_sdk(raw, paid_ledger, fake_provider):
    names = {(Chat, "complete"), (Chat, "complete_async"), (Chat, "stream"),
             (Chat, "stream_async"), (Embeddings, "create"), (Embeddings, "create_async"),
             (Ocr, "process"), (Ocr, "process_async")}
    before = {(cls, name): cls.__dict__[name] for cls, name in names}
    paid_hooks.instrument("mistral")
    patched = {(cls, name): cls.__dict__[name] for cls, name in names}
    paid_hooks.instrument("mistral")  # idempotent: not wrapped twice
    assert {(c, n): c.__dict__[n] for c, n in names} == patched
    assert all(patched[k] is not before[k] for k in names)
    paid_hooks.uninstrument("mistral")
    paid_hooks.uninstrument("mistral")
    assert all(cls.__dict__[name] is before[(cls, name)] for cls, name in names)

    traced(lambda: raw.chat.complete(model=MODEL, messages=MESSAGES))
    assert len(fake_provider.exchanges) == 1
    assert paid_ledger.calls() == [], "a plain client is not recorded once uninstrumented"


def test_no_api_key_in_the_ledger(client, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE),
                        FakeReply(status=401, error_message="Unauthorized"))

    def run() -> None:
        client.chat.complete(model=MODEL, messages=MESSAGES)
        list(client.chat.stream(model=MODEL, messages=MESSAGES))
        with pytest.raises(errors.SDKError):
            client.chat.complete(model=MODEL, messages=MESSAGES)

    traced(run)
    assert all(e.request_headers["authorization"] == f"Bearer {API_KEY}"
               for e in fake_provider.exchanges), "the key was really sent"
    rows = paid_ledger.calls()
    assert len(rows) == 3
    for row in rows:
        for value in row.values():
            assert API_KEY not in str(value) and "Bearer" not in str(value)
    database = Path(paid_ledger.url.removeprefix("sqlite:///"))
    files = list(database.parent.glob(database.name + "*"))
    assert database in files
    for path in files:
        assert API_KEY.encode() not in path.read_bytes()


# -- the wrapper itself ----------------------------------------------------------------


def test_wrapper_is_transparent(raw):
    client = PaidMistral(raw)
    assert isinstance(client.chat, Chat) and isinstance(client.ocr, Ocr)
    assert client.chat.sdk_configuration is raw.chat.sdk_configuration
    assert client.models is raw.models  # untouched resources pass through
    with client as entered:
        assert entered is client


def test_plugin_import_does_not_import_the_sdk():
    code = ("import sys, paid_hooks_mistral; "
            "assert not any(m.startswith('mistralai') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_instrument_raises_import_error_without_the_sdk(monkeypatch):
    import paid_hooks_mistral

    monkeypatch.setitem(sys.modules, "mistralai.client.chat", None)
    with pytest.raises(ImportError):
        paid_hooks_mistral.instrument()
    assert Chat.__dict__["complete"].__qualname__ == "Chat.complete"
