"""The LlamaIndex handlers driving the real llama-index-llms-openai ``OpenAI`` LLM.

Every call goes through LlamaIndex's real dispatcher to the fake OpenAI server; each test
asserts exact tokens and exact cost (computed independently with genai-prices from the
canonical usage the fake server was told to report).
"""

from __future__ import annotations

import asyncio
import gc
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest
from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import ChatMessage
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.prompts import PromptTemplate
from llama_index.llms.openai import OpenAI
from pydantic import BaseModel, Field

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage
from paid_hooks_llamaindex import PaidLlamaIndexHandler, PaidLlamaIndexOpenAI
from paid_hooks_llamaindex._handler import TRACKER

MODEL = "gpt-4o-mini"
SECRET = "sk-llamaindex-TESTSECRET-0123456789"
HINT = ("stream_usage_not_requested: use PaidLlamaIndexOpenAI or "
        "additional_kwargs={'stream_options': {'include_usage': True}}")
USAGE = FakeUsage(1200, 300, cache_read_tokens=200, reasoning_tokens=50)


def expected_cost(u: FakeUsage, model: str = MODEL) -> Decimal:
    fields: dict[str, Any] = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}
    if u.cache_read_tokens:
        fields["cache_read_tokens"] = u.cache_read_tokens
    if u.reasoning_tokens:
        fields["output_reasoning_tokens"] = u.reasoning_tokens
    price = genai_prices.calc_price(genai_prices.Usage(**fields), model, provider_id="openai")
    return Decimal(price.total_price)


def assert_priced(row: dict[str, Any], u: FakeUsage, *, streaming: bool,
                  captured_by: str = "llamaindex", response_id: str | None = None) -> None:
    assert row["cost_status"] == "priced", row["cost_reason"]
    assert row["provider"] == "openai"
    assert row["operation"] == "chat"
    assert row["captured_by"] == captured_by
    assert row["model"] == MODEL
    assert row["input_tokens"] == u.input_tokens
    assert row["output_tokens"] == u.output_tokens
    assert row["cache_read_tokens"] == u.cache_read_tokens
    assert row["reasoning_tokens"] == u.reasoning_tokens
    assert row["streaming"] == int(streaming)
    assert row["external_customer_id"] == "acme"
    assert Decimal(row["cost_usd"]) == expected_cost(u)
    if response_id is not None:
        assert row["response_id"] == response_id


def user(text: str = "Summarise this ticket in one line.") -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


@pytest.fixture
def handler(paid_ledger):
    registered = PaidLlamaIndexHandler.register()
    yield registered
    PaidLlamaIndexHandler.unregister()
    assert TRACKER.open_calls() == 0


@pytest.fixture
def llm(fake_provider) -> OpenAI:
    return OpenAI(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                  max_retries=0)


@pytest.fixture
def paid_llm(fake_provider) -> PaidLlamaIndexOpenAI:
    return PaidLlamaIndexOpenAI(model=MODEL, api_base=fake_provider.openai_url,
                                api_key=SECRET, max_retries=0)


class StartCounter(BaseEventHandler):
    """Counts LLM start events (to prove a nested call really nested)."""

    starts: list[str] = Field(default_factory=list)

    def handle(self, event: Any, **kwargs: Any) -> None:
        if type(event).__name__ in ("LLMChatStartEvent", "LLMCompletionStartEvent"):
            self.starts.append(type(event).__name__)


@pytest.fixture
def start_counter():
    root = get_dispatcher()
    counter = StartCounter()
    root.add_event_handler(counter)
    yield counter
    root.event_handlers = [h for h in root.event_handlers if h is not counter]


# -- non-streaming ----------------------------------------------------------------------


def test_chat(handler, llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        reply = llm.chat(user())
        signal("ticket_summarised", enable_cost_tracing=True)
    assert reply.message.content == FakeReply().text
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False, response_id=fake_provider.exchanges[0].response_id)
    assert row["service_tier"] == "default"
    [sig] = paid_ledger.signals()
    assert Decimal(sig["cost_usd"]) == expected_cost(USAGE)


async def test_achat(handler, llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await llm.achat(user())
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False, response_id=fake_provider.exchanges[0].response_id)


def test_complete(handler, llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        llm.complete("Summarise this ticket in one line.")
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False, response_id=fake_provider.exchanges[0].response_id)


async def test_acomplete(handler, llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await llm.acomplete("Summarise this ticket in one line.")
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False)


def test_model_served_differs_from_requested(handler, llm, fake_provider, paid_ledger):
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage, model="gpt-4o-mini-2024-07-18"))
    with paid_tracing("acme", external_agent_id="support"):
        llm.chat(user())
    [row] = paid_ledger.calls()
    assert row["request_model"] == MODEL
    assert row["response_model"] == row["model"] == "gpt-4o-mini-2024-07-18"
    assert Decimal(row["cost_usd"]) == expected_cost(usage, "gpt-4o-mini-2024-07-18")


# -- complete() implemented with chat(): one call, not two ------------------------------


class ChatBackedOpenAI(PaidLlamaIndexOpenAI):
    """``complete()`` built on the public ``chat()``, as llama-index-llms-anthropic does."""

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        return chat_to_completion_decorator(self.chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        return await achat_to_completion_decorator(self.achat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        return stream_chat_to_completion_decorator(self.stream_chat)(prompt, **kwargs)


@pytest.fixture
def nested_llm(fake_provider) -> ChatBackedOpenAI:
    return ChatBackedOpenAI(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                            max_retries=0)


def test_complete_calling_chat_is_one_call(handler, nested_llm, fake_provider, paid_ledger,
                                           start_counter):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        nested_llm.complete("Summarise this ticket in one line.")
    assert sorted(start_counter.starts) == ["LLMChatStartEvent", "LLMCompletionStartEvent"]
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False, response_id=fake_provider.exchanges[0].response_id)


def test_complete_calling_chat_outside_a_trace_is_one_row(handler, nested_llm, fake_provider,
                                                          paid_ledger, start_counter):
    # Outside paid_tracing every record gets its own trace, so the ledger's per-trace
    # de-duplication by response id cannot hide a second record here.
    fake_provider.queue(FakeReply(usage=USAGE))
    nested_llm.complete("Summarise this ticket in one line.")
    assert len(start_counter.starts) == 2
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "priced"
    assert row["external_customer_id"] is None


def test_complete_calling_chat_that_fails_is_one_row(handler, nested_llm, fake_provider,
                                                     paid_ledger):
    fake_provider.queue(FakeReply(status=400))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.BadRequestError):
        nested_llm.complete("Summarise this ticket in one line.")
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["operation"] == "chat"


async def test_acomplete_calling_achat_is_one_call(handler, nested_llm, fake_provider,
                                                   paid_ledger, start_counter):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await nested_llm.acomplete("Summarise this ticket in one line.")
    assert len(start_counter.starts) == 2
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False)


def test_stream_complete_calling_stream_chat_is_one_call(handler, nested_llm, fake_provider,
                                                         paid_ledger, start_counter):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        text = "".join(chunk.delta or "" for chunk in nested_llm.stream_complete("Hi"))
    assert text == FakeReply().text
    assert len(start_counter.starts) == 2
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=True, response_id=fake_provider.exchanges[0].response_id)


# -- structured predict -----------------------------------------------------------------


class Ticket(BaseModel):
    summary: str
    priority: int


def test_structured_predict_is_one_call(handler, llm, fake_provider, paid_ledger):
    usage = FakeUsage(800, 40)
    fake_provider.queue(FakeReply(text='{"summary": "refund", "priority": 2}', usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        ticket = llm.structured_predict(Ticket, PromptTemplate("Classify: {text}"), text="x")
    assert ticket == Ticket(summary="refund", priority=2)
    assert len(fake_provider.exchanges) == 1
    [row] = paid_ledger.calls()
    assert_priced(row, usage, streaming=False)


async def test_astructured_predict_is_one_call(handler, llm, fake_provider, paid_ledger):
    usage = FakeUsage(800, 40)
    fake_provider.queue(FakeReply(text='{"summary": "refund", "priority": 2}', usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        await llm.astructured_predict(Ticket, PromptTemplate("Classify: {text}"), text="x")
    [row] = paid_ledger.calls()
    assert_priced(row, usage, streaming=False)


# -- streaming --------------------------------------------------------------------------


def test_stream_chat_with_paid_openai_is_priced(handler, paid_llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        stream = paid_llm.stream_chat(user())
        text = "".join(chunk.delta or "" for chunk in stream)
    assert text == FakeReply().text
    [exchange] = fake_provider.exchanges
    assert exchange.request_json["stream_options"] == {"include_usage": True}
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=True, response_id=exchange.response_id)


async def test_astream_chat_with_paid_openai_is_priced(handler, paid_llm, fake_provider,
                                                       paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        stream = await paid_llm.astream_chat(user())
        chunks = [chunk async for chunk in stream]
    assert chunks
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=True, response_id=fake_provider.exchanges[0].response_id)


def test_paid_openai_non_streaming_request_has_no_stream_options(handler, paid_llm,
                                                                  fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        paid_llm.chat(user())
    assert "stream_options" not in fake_provider.exchanges[0].request_json
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False)


def test_stream_with_additional_kwargs_include_usage_is_priced(handler, fake_provider,
                                                               paid_ledger):
    llm = OpenAI(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET,
                 additional_kwargs={"stream_options": {"include_usage": True}})
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        list(llm.stream_complete("Hi"))
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=True)


def test_stock_openai_stream_is_usage_unknown_with_the_fix_named(handler, llm, fake_provider,
                                                                paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        list(llm.stream_chat(user()))
        signal("ticket_summarised", enable_cost_tracing=True)
    [exchange] = fake_provider.exchanges
    assert "stream_options" not in exchange.request_json
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == HINT
    assert row["input_tokens"] is None and row["cost_usd"] is None
    assert row["response_id"] == exchange.response_id
    assert row["streaming"] == 1
    [sig] = paid_ledger.signals()
    assert sig["usage_unknown_calls"] == 1


def test_stream_abandoned_early_is_usage_unknown(handler, paid_llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(text="x" * 200, usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        stream = paid_llm.stream_chat(user())
        next(stream)
        stream.close()
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"
    assert row["response_id"] == fake_provider.exchanges[0].response_id
    assert TRACKER.open_calls() == 0


async def test_astream_abandoned_early_is_usage_unknown(handler, paid_llm, fake_provider,
                                                        paid_ledger):
    fake_provider.queue(FakeReply(text="x" * 200, usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        stream = await paid_llm.astream_chat(user())
        await stream.__anext__()
        await stream.aclose()
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


def test_stream_cut_by_the_server_is_usage_unknown(handler, paid_llm, fake_provider,
                                                   paid_ledger):
    fake_provider.queue(FakeReply(text="x" * 200, usage=USAGE, cut_stream_after=3))
    with paid_tracing("acme", external_agent_id="support"):
        list(paid_llm.stream_chat(user()))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


def test_stream_never_iterated_records_nothing(handler, paid_llm, fake_provider, paid_ledger):
    with paid_tracing("acme", external_agent_id="support"):
        stream = paid_llm.stream_chat(user())
        del stream
        gc.collect()
    assert fake_provider.exchanges == []
    assert paid_ledger.calls() == []
    assert TRACKER.open_calls() == 0


# -- errors -----------------------------------------------------------------------------


def test_chat_error_reaches_caller_and_is_no_charge(handler, llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(status=400, error_message="bad request"))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.BadRequestError) as caught:
        llm.chat(user())
    assert caught.value.status_code == 400
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["call_status"] == "error"
    assert row["error_type"] == "BadRequestError"
    assert row["captured_by"] == "llamaindex"
    assert TRACKER.open_calls() == 0


async def test_achat_error_reaches_caller_and_is_no_charge(handler, llm, fake_provider,
                                                           paid_ledger):
    fake_provider.queue(FakeReply(status=400))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.BadRequestError):
        await llm.achat(user())
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["error_type"] == "BadRequestError"


def test_stream_error_reaches_caller_and_is_no_charge(handler, paid_llm, fake_provider,
                                                      paid_ledger):
    fake_provider.queue(FakeReply(status=400))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.BadRequestError):
        list(paid_llm.stream_chat(user()))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["error_type"] == "BadRequestError"
    assert row["streaming"] == 1


# -- attribution under concurrency ------------------------------------------------------


def usage_of(index: int) -> FakeUsage:
    return FakeUsage(100 + 7 * index, 10 + index)


async def test_fifty_concurrent_achats_each_attributed_to_its_own_signal(
        handler, llm, fake_provider, paid_ledger):
    def responder(provider: str, body: Any) -> FakeReply:
        index = int(body["messages"][0]["content"].split()[-1])
        return FakeReply(usage=usage_of(index))

    fake_provider.responder = responder

    async def handle_ticket(index: int) -> None:
        with paid_tracing(f"customer-{index}", external_agent_id="support"):
            await llm.achat(user(f"ticket {index}"))
            signal("ticket_summarised", enable_cost_tracing=True)

    await asyncio.gather(*(handle_ticket(i) for i in range(50)))
    signals = paid_ledger.signals()
    assert len(signals) == 50
    for sig in signals:
        index = int(sig["external_customer_id"].split("-")[1])
        assert sig["ai_calls"] == 1
        assert sig["input_tokens"] == usage_of(index).input_tokens
        assert Decimal(sig["cost_usd"]) == expected_cost(usage_of(index))
    assert len(paid_ledger.calls()) == 50


# -- exactly once with the provider layers ----------------------------------------------


@pytest.fixture
def openai_instrumented(paid_ledger):
    assert "openai" in paid_hooks.instrument("openai")
    yield
    paid_hooks.uninstrument("openai")


def test_chat_with_openai_instrumented_is_one_row(handler, openai_instrumented, llm,
                                                  fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        llm.chat(user())
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False, captured_by="openai",
                  response_id=fake_provider.exchanges[0].response_id)


def test_chat_with_openai_instrumented_outside_a_trace_is_one_row(
        handler, openai_instrumented, llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    llm.chat(user())  # no trace: no ledger de-duplication to fall back on
    [row] = paid_ledger.calls()
    assert row["captured_by"] == "openai"
    assert row["input_tokens"] == USAGE.input_tokens


async def test_achat_with_openai_instrumented_is_one_row(handler, openai_instrumented, llm,
                                                         fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await llm.achat(user())
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False, captured_by="openai")


def test_chat_error_with_openai_instrumented_is_one_row(handler, openai_instrumented, llm,
                                                        fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(status=400))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.BadRequestError):
        llm.chat(user())
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"


def test_stream_with_openai_instrumented_is_one_row(handler, openai_instrumented, paid_llm,
                                                    fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        list(paid_llm.stream_chat(user()))
    [row] = paid_ledger.calls()
    # The request is sent while the stream is iterated, outside the LlamaIndex span: both
    # layers may record, and the ledger keeps one row for the response id.
    assert_priced(row, USAGE, streaming=True, captured_by=row["captured_by"],
                  response_id=fake_provider.exchanges[0].response_id)



@pytest.fixture
def httpx_instrumented(paid_ledger):
    assert "httpx" in paid_hooks.instrument("httpx")
    yield
    paid_hooks.uninstrument("httpx")


def test_chat_with_httpx_hook_is_one_row(handler, httpx_instrumented, fake_provider,
                                         paid_ledger):
    llm = OpenAI(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET)
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        llm.chat(user())
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, streaming=False, captured_by=row["captured_by"],
                  response_id=fake_provider.exchanges[0].response_id)


def test_chat_with_every_layer_is_one_row(handler, openai_instrumented, httpx_instrumented,
                                          fake_provider, paid_ledger):
    llm = PaidLlamaIndexOpenAI(model=MODEL, api_base=fake_provider.openai_url, api_key=SECRET)
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        llm.chat(user())
        list(llm.stream_chat(user()))
    rows = sorted(paid_ledger.calls(), key=lambda r: r["streaming"])
    assert len(rows) == 2
    assert_priced(rows[0], USAGE, streaming=False, captured_by="openai")
    assert_priced(rows[1], USAGE, streaming=True, captured_by=rows[1]["captured_by"])


# -- registration and secrets -----------------------------------------------------------


def test_register_and_unregister_are_idempotent_and_clean(paid_ledger, llm, fake_provider):
    root = get_dispatcher()
    events_before, spans_before = list(root.event_handlers), list(root.span_handlers)
    first = PaidLlamaIndexHandler.register()
    assert PaidLlamaIndexHandler.register() is first
    assert sum(h is first for h in root.event_handlers) == 1
    assert len(root.span_handlers) == len(spans_before) + 1
    PaidLlamaIndexHandler.unregister()
    PaidLlamaIndexHandler.unregister()
    assert [id(h) for h in root.event_handlers] == [id(h) for h in events_before]
    assert [id(h) for h in root.span_handlers] == [id(h) for h in spans_before]
    with paid_tracing("acme", external_agent_id="support"):
        llm.chat(user())
    assert paid_ledger.calls() == []


def test_instrument_and_uninstrument_through_paid_hooks(paid_ledger, llm, fake_provider):
    root = get_dispatcher()
    before = len(root.event_handlers)
    assert "llamaindex" in paid_hooks.instrument("llamaindex")
    try:
        assert PaidLlamaIndexHandler.registered() in root.event_handlers
        fake_provider.queue(FakeReply(usage=USAGE))
        with paid_tracing("acme", external_agent_id="support"):
            llm.chat(user())
        [row] = paid_ledger.calls()
        assert_priced(row, USAGE, streaming=False)
    finally:
        paid_hooks.uninstrument("llamaindex")
    assert PaidLlamaIndexHandler.registered() is None
    assert len(root.event_handlers) == before
    paid_hooks.uninstrument("llamaindex")  # idempotent


def test_no_secret_reaches_the_ledger(handler, llm, paid_llm, fake_provider, paid_ledger):
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE), FakeReply(status=401))
    with paid_tracing("acme", external_agent_id="support"):
        llm.chat(user())
        list(paid_llm.stream_chat(user()))
        with pytest.raises(openai.AuthenticationError):
            llm.chat(user())
        signal("ticket_summarised", enable_cost_tracing=True)
    assert fake_provider.exchanges[0].request_headers["authorization"] == f"Bearer {SECRET}"
    rows = paid_ledger.calls() + paid_ledger.signals()
    assert len(rows) == 4
    dumped = repr(rows)
    assert SECRET not in dumped
    assert "Bearer" not in dumped
    assert "Summarise this ticket" not in dumped
