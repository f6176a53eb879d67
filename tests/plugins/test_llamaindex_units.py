"""The LlamaIndex handler driven directly (the dispatcher would swallow its exceptions),
its usage normalisation from real SDK response types, and ``CallHandle.fallback()``.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from anthropic.types import Usage as AnthropicUsage
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatInProgressEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import ResponseUsage

import paid_hooks
from paid_hooks import paid_tracing
from paid_hooks_llamaindex import PaidLlamaIndexHandler
from paid_hooks_llamaindex._handler import TRACKER
from paid_hooks_llamaindex._usage import estimate_tokens, provider_for, usage_from_raw

MODEL = "gpt-4o-mini"
MODEL_DICT = {"class_name": "openai_llm", "model_name": MODEL, "is_chat_model": True}
OPENAI_USAGE = {
    "prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 50, "audio_tokens": 0},
}


def completion(response_id: str = "chatcmpl-direct1", usage: Any = OPENAI_USAGE) -> ChatCompletion:
    return ChatCompletion.model_validate({
        "id": response_id, "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "ok"}}],
        "usage": usage,
    })


def chunk(response_id: str, *, finish: str | None = None, usage: Any = None,
          choices: bool = True) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate({
        "id": response_id, "object": "chat.completion.chunk", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": finish}]
        if choices else [],
        "usage": usage,
    })


def span(method: str = "chat") -> str:
    return f"OpenAI.{method}-{uuid.uuid4()}"


def chat_response(raw: Any) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role="assistant", content="ok"), raw=raw)


def expected_cost() -> Decimal:
    usage = genai_prices.Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200,
                               output_reasoning_tokens=50)
    return Decimal(genai_prices.calc_price(usage, MODEL, provider_id="openai").total_price)


@pytest.fixture
def handler(paid_ledger):
    """A handler instance called by hand (nothing registered on the dispatcher)."""
    assert PaidLlamaIndexHandler.registered() is None
    yield PaidLlamaIndexHandler()
    assert TRACKER.open_calls() == 0


# -- the handler, called directly -------------------------------------------------------


def test_direct_chat_events_record_the_raw_usage(handler, paid_ledger):
    sid = span()
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                         model_dict=MODEL_DICT, span_id=sid))
        handler.handle(LLMChatEndEvent(messages=[], response=chat_response(completion()),
                                       span_id=sid))
    [row] = paid_ledger.calls()
    assert row["captured_by"] == "llamaindex"
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 300)
    assert (row["cache_read_tokens"], row["reasoning_tokens"]) == (200, 50)
    assert row["response_id"] == "chatcmpl-direct1"
    assert Decimal(row["cost_usd"]) == expected_cost()


def test_direct_completion_events_on_a_non_chat_model_are_text_completion(handler,
                                                                          paid_ledger):
    sid = span("complete")
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMCompletionStartEvent(
            prompt="hi", additional_kwargs={}, span_id=sid,
            model_dict={**MODEL_DICT, "is_chat_model": False}))
        handler.handle(LLMCompletionEndEvent(
            prompt="hi", response=CompletionResponse(text="ok", raw=completion()), span_id=sid))
    [row] = paid_ledger.calls()
    assert row["operation"] == "text_completion"
    assert row["input_tokens"] == 1200


def test_direct_stream_events_take_usage_from_the_last_chunk(handler, paid_ledger):
    sid = span("stream_chat")
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                         model_dict=MODEL_DICT, span_id=sid))
        for raw in (chunk("chatcmpl-s1"), chunk("chatcmpl-s1", finish="stop"),
                    chunk("chatcmpl-s1", usage=OPENAI_USAGE, choices=False)):
            handler.handle(LLMChatInProgressEvent(messages=[], response=chat_response(raw),
                                                  span_id=sid))
        handler.handle(LLMChatEndEvent(
            messages=[], span_id=sid,
            response=chat_response(chunk("chatcmpl-s1", usage=OPENAI_USAGE, choices=False))))
    [row] = paid_ledger.calls()
    assert row["streaming"] == 1
    assert row["response_id"] == "chatcmpl-s1"
    assert Decimal(row["cost_usd"]) == expected_cost()


def test_direct_stream_closed_after_the_usage_chunk_is_still_priced(handler, paid_ledger):
    sid = span("stream_chat")
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                         model_dict=MODEL_DICT, span_id=sid))
        handler.handle(LLMChatInProgressEvent(
            messages=[], span_id=sid,
            response=chat_response(chunk("chatcmpl-s2", usage=OPENAI_USAGE, choices=False))))
        handler.handle(ExceptionEvent(exception=GeneratorExit(), span_id=sid))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == expected_cost()


def test_direct_stream_failing_after_chunks_is_usage_unknown_not_free(handler, paid_ledger):
    sid = span("stream_chat")
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                         model_dict=MODEL_DICT, span_id=sid))
        handler.handle(LLMChatInProgressEvent(messages=[], span_id=sid,
                                              response=chat_response(chunk("chatcmpl-s3"))))
        handler.handle(ExceptionEvent(exception=ConnectionResetError(), span_id=sid))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_failed:ConnectionResetError"
    assert row["response_id"] == "chatcmpl-s3"


@pytest.mark.parametrize("raw", [None, object(), {"usage": None}, {"usage": {"weird": 1}},
                                 "not a response"])
def test_direct_end_without_readable_usage_is_usage_unknown(handler, paid_ledger, raw):
    sid = span()
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                         model_dict=MODEL_DICT, span_id=sid))
        handler.handle(LLMChatEndEvent(messages=[], response=chat_response(raw), span_id=sid))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "usage_not_in_response"


def test_direct_raw_whose_attributes_raise_never_reaches_the_caller(handler, paid_ledger):
    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("boom")

    sid = span()
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                         model_dict=MODEL_DICT, span_id=sid))
        handler.handle(LLMChatEndEvent(messages=[], response=chat_response(Hostile()),
                                       span_id=sid))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"


def test_direct_handler_bug_is_logged_not_raised(handler, paid_ledger, monkeypatch, caplog):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("handler bug")

    monkeypatch.setattr(TRACKER, "llm_start", broken)
    handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={}, model_dict=MODEL_DICT,
                                     span_id=span()))
    assert "LLMChatStartEvent not handled" in caplog.text
    assert paid_ledger.calls() == []


def test_direct_events_without_a_span_or_unknown_are_ignored(handler, paid_ledger):
    handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={}, model_dict=MODEL_DICT,
                                     span_id=None))
    handler.handle(LLMChatEndEvent(messages=[], response=chat_response(completion()),
                                   span_id=span()))
    handler.handle(ExceptionEvent(exception=ValueError(), span_id=span()))
    assert paid_ledger.calls() == []


def test_the_same_event_through_two_registrations_is_handled_once(handler, paid_ledger):
    sid = span()
    start = LLMChatStartEvent(messages=[], additional_kwargs={}, model_dict=MODEL_DICT,
                              span_id=sid)
    end = LLMChatEndEvent(messages=[], response=chat_response(completion()), span_id=sid)
    second = PaidLlamaIndexHandler()
    with paid_tracing("acme", external_agent_id="support"):
        for event in (start, end):
            handler.handle(event)
            second.handle(event)
    assert len(paid_ledger.calls()) == 1


# -- usage normalisation from the SDKs' own types ----------------------------------------


def test_openai_chat_usage_keeps_cache_and_reasoning():
    usage = usage_from_raw(completion())
    assert usage == paid_hooks.Usage(input_tokens=1200, output_tokens=300,
                                     cache_read_tokens=200, reasoning_tokens=50,
                                     input_audio_tokens=0, output_audio_tokens=0)


def test_openai_responses_usage():
    raw = {"usage": ResponseUsage.model_validate({
        "input_tokens": 900, "output_tokens": 120, "total_tokens": 1020,
        "input_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 20},
        "output_tokens_details": {"reasoning_tokens": 64}})}
    assert usage_from_raw(raw) == paid_hooks.Usage(input_tokens=900, output_tokens=120,
                                                   cache_read_tokens=300, cache_write_tokens=20,
                                                   reasoning_tokens=64)


def test_anthropic_usage_is_made_inclusive():
    # llama-index-llms-anthropic passes raw=dict(message): usage is the SDK's Usage object.
    raw = {"id": "msg_1", "usage": AnthropicUsage.model_validate({
        "input_tokens": 13, "output_tokens": 40, "cache_read_input_tokens": 50,
        "cache_creation_input_tokens": 100,
        "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40}})}
    assert usage_from_raw(raw) == paid_hooks.Usage(
        input_tokens=163, output_tokens=40, cache_read_tokens=50, cache_write_tokens=100,
        cache_write_5m_tokens=60, cache_write_1h_tokens=40)


@pytest.mark.parametrize(("class_name", "provider"), [
    ("openai_llm", "openai"),
    ("OpenAIEmbedding", "openai"),
    ("azure_openai_llm", "azure.ai.openai"),
    ("AzureOpenAIEmbedding", "azure.ai.openai"),
    ("Anthropic_LLM", "anthropic"),
    ("Bedrock_Converse_LLM", "aws.bedrock"),
    ("Vertex", "gcp.vertex_ai"),
    ("Gemini_LLM", "gcp.gemini"),
    ("MistralAI_LLM", "mistral_ai"),
    ("OpenRouter_LLM", "openrouter"),
    ("SomethingCustom", "SomethingCustom"),
    (None, "unknown"),
])
def test_provider_from_class_name(class_name, provider):
    assert provider_for({"class_name": class_name}) == provider


def test_estimate_falls_back_to_four_characters_a_token():
    def broken(text: str) -> list[int]:
        raise RuntimeError

    assert estimate_tokens(["abcdefgh", "abc"], tokenizer=broken) == 3
    assert estimate_tokens(["hello world"], tokenizer=lambda t: t.split()) == 2


# -- CallHandle.fallback() (core) --------------------------------------------------------


def _start(captured_by: str) -> paid_hooks.CallHandle:
    return paid_hooks.start_call(provider="openai", operation="chat", request_model=MODEL,
                                 captured_by=captured_by)


def test_fallback_records_when_no_lower_layer_does(paid_ledger):
    with paid_tracing("acme", external_agent_id="support"):
        upper = _start("upper")
        with upper.fallback():
            pass
        upper.finish(paid_hooks.Usage(input_tokens=10, output_tokens=1))
    [row] = paid_ledger.calls()
    assert row["captured_by"] == "upper"


def test_fallback_stands_down_for_a_lower_layer(paid_ledger):
    with paid_tracing("acme", external_agent_id="support"):
        upper = _start("upper")
        with upper.fallback():
            lower = _start("lower")
            assert lower.recording
            lower.finish(paid_hooks.Usage(input_tokens=10, output_tokens=1))
        assert not upper.recording
        upper.finish(paid_hooks.Usage(input_tokens=99, output_tokens=9))
        upper.fail(RuntimeError())
    [row] = paid_ledger.calls()
    assert (row["captured_by"], row["input_tokens"]) == ("lower", 10)


def test_fallback_reaches_tasks_started_inside_it_and_ends_with_the_block(paid_ledger):
    async def scenario() -> None:
        uppers = [_start("upper") for _ in range(3)]
        guards = [u.fallback() for u in uppers]
        for guard in guards:
            guard.__enter__()

        async def lower() -> None:
            _start("lower").finish(paid_hooks.Usage(input_tokens=5, output_tokens=1))

        await asyncio.gather(lower(), lower())
        for guard in reversed(guards):
            guard.__exit__(None, None, None)
        for upper in uppers:
            upper.finish(paid_hooks.Usage(input_tokens=7, output_tokens=1))
        after = _start("after")  # outside every block: supersedes nothing
        after.finish(paid_hooks.Usage(input_tokens=3, output_tokens=1))

    with paid_tracing("acme", external_agent_id="support"):
        asyncio.run(scenario())
    rows = sorted((r["captured_by"], r["input_tokens"]) for r in paid_ledger.calls())
    assert rows == [("after", 3), ("lower", 5), ("lower", 5), ("upper", 7)]


def test_exclusive_inside_a_fallback_still_silences_the_layers_below(paid_ledger):
    with paid_tracing("acme", external_agent_id="support"):
        upper = _start("upper")
        with upper.fallback():
            middle = _start("middle")
            with middle.exclusive():
                assert not _start("bottom").recording
            middle.finish(paid_hooks.Usage(input_tokens=10, output_tokens=1))
    assert [r["captured_by"] for r in paid_ledger.calls()] == ["middle"]


# -- local models are not provider calls ------------------------------------------------


def test_local_models_record_nothing(paid_ledger):
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM

    PaidLlamaIndexHandler.register()
    try:
        with paid_tracing("acme", external_agent_id="support"):
            MockLLM().complete("hello")
            list(MockLLM().stream_chat([ChatMessage(role="user", content="hello")]))
            MockEmbedding(embed_dim=4).get_text_embedding("hello")
        assert TRACKER.open_calls() == 0
    finally:
        PaidLlamaIndexHandler.unregister()
    assert paid_ledger.calls() == []


def test_a_failed_call_seen_only_by_a_hand_added_event_handler_is_no_charge(handler,
                                                                              paid_ledger):
    from llama_index.core.instrumentation.events.span import SpanDropEvent

    sid = span()
    with paid_tracing("acme", external_agent_id="support"):
        handler.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                         model_dict=MODEL_DICT, span_id=sid))
        handler.handle(SpanDropEvent(span_id=sid, err_str="boom"))
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["error_type"] == "error"


def test_unregister_gives_up_open_calls_as_usage_unknown(paid_ledger):
    registered = PaidLlamaIndexHandler.register()
    sid = span("stream_chat")
    with paid_tracing("acme", external_agent_id="support"):
        registered.handle(LLMChatStartEvent(messages=[], additional_kwargs={},
                                            model_dict=MODEL_DICT, span_id=sid))
        registered.handle(LLMChatInProgressEvent(messages=[], span_id=sid,
                                                 response=chat_response(chunk("chatcmpl-u1"))))
        PaidLlamaIndexHandler.unregister()
    assert TRACKER.open_calls() == 0
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "instrumentation_removed"
    assert row["response_id"] == "chatcmpl-u1"
