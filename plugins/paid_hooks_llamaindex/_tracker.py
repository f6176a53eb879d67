"""The call state machine behind the LlamaIndex handlers (no LlamaIndex import here).

LlamaIndex reports one model call as events that share the ``span_id`` of the
dispatcher span around the LLM or embedding method:

* ``LLMChatStartEvent`` / ``LLMCompletionStartEvent`` -> :meth:`CallTracker.llm_start`;
* ``...InProgressEvent`` (streams) -> :meth:`CallTracker.llm_progress`;
* ``...EndEvent`` -> :meth:`CallTracker.llm_end`; ``ExceptionEvent`` (streams) ->
  :meth:`CallTracker.exception`;
* the span's exit / drop (span handler) -> :meth:`CallTracker.span_exit` /
  :meth:`CallTracker.span_drop`. A non-streaming call that raises gets no End event, only
  the drop. A stream's span exits as soon as the generator is returned, before any
  chunk: the call stays open until its End or Exception event.
* ``EmbeddingStartEvent`` / ``EmbeddingEndEvent`` -> :meth:`CallTracker.embedding_start` /
  :meth:`CallTracker.embedding_end` (several may be open in one span: async batches).

Exactly once: each call runs inside ``handle.fallback()`` from its Start event to its
span's exit (same context). A lower layer (the openai plugin, the httpx hook) that
records the provider request inside that window supersedes this handle; an inner
LlamaIndex call (``complete()`` implemented with ``chat()``) supersedes the outer one the
same way, so only the innermost, provider-level call is recorded. Where the window does
not cover the request (an OpenAI stream sends it while being iterated) both layers
record and the ledger keeps one row per provider response id.

Every method is called from LlamaIndex's dispatcher, which swallows exceptions: each
one catches and logs its own errors, and records ``usage_unknown`` when it cannot read
a response.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import as_str, on_collect
from paid_hooks_llamaindex._usage import (
    OPENAI_FAMILY,
    OPENAI_STREAM_USAGE_HINT,
    estimate_tokens,
    get,
    local_or_provider,
    request_model,
    usage_from_raw,
)

__all__ = ["CAPTURED_BY", "CallTracker"]

log = logging.getLogger("paid_hooks.llamaindex")

CAPTURED_BY = "llamaindex"
_UUID_SUFFIX = 37  # "-" + uuid4 at the end of every dispatcher span id


@dataclass(slots=True)
class _Open:
    """One model call between its Start event and its end."""

    handle: paid_hooks.CallHandle
    guard: contextlib.AbstractContextManager[Any] | None
    provider: str
    streaming: bool
    response_id: str | None = None
    response_model: str | None = None
    usage_raw: Any = None
    """The last streamed ``raw`` that carried usage (OpenAI: the final chunk)."""
    finished: bool = False
    """A streamed chunk carried a ``finish_reason``: the stream was not cut short."""


def _method_of(span_id: str) -> str:
    """``"OpenAI.stream_chat-<uuid4>"`` -> ``"stream_chat"``."""
    head = span_id[:-_UUID_SUFFIX] if len(span_id) > _UUID_SUFFIX else span_id
    return head.rsplit(".", 1)[-1]


def _is_stream_method(span_id: str) -> bool:
    method = _method_of(span_id)
    return method.startswith(("stream", "astream"))


def _guard(call: _Open) -> None:
    """Enter ``handle.fallback()`` for the call: a lower layer's record then wins."""
    fallback = getattr(call.handle, "fallback", None)  # paid-hooks without it: ledger dedupe
    if fallback is None or not call.handle.recording:
        return
    guard = fallback()
    guard.__enter__()
    call.guard = guard


def _release(call: _Open) -> None:
    guard, call.guard = call.guard, None
    if guard is not None:
        try:
            guard.__exit__(None, None, None)
        except Exception:
            log.debug("paid_hooks: could not release a fallback guard", exc_info=True)


class CallTracker:
    """Open calls keyed by dispatcher span id, behind one lock. Thread- and task-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, deque[_Open]] = {}
        self.guards = True
        """Run calls inside ``handle.fallback()``; only safe with the span handler
        attached (it releases the guard at span exit, in the caller's context)."""

    # -- bookkeeping --------------------------------------------------------------------

    def _push(self, span_id: str, call: _Open) -> None:
        with self._lock:
            self._open.setdefault(span_id, deque()).append(call)

    def _pop(self, span_id: str) -> _Open | None:
        with self._lock:
            calls = self._open.get(span_id)
            if not calls:
                return None
            call = calls.popleft()
            if not calls:
                del self._open[span_id]
            return call

    def _end(self, span_id: str | None) -> _Open | None:
        """The oldest open call of ``span_id``, removed, its fallback guard released."""
        call = self._pop(span_id) if span_id else None
        if call is not None:
            _release(call)
        return call

    def _peek(self, span_id: str) -> _Open | None:
        with self._lock:
            calls = self._open.get(span_id)
            return calls[-1] if calls else None

    def _take_all(self, span_id: str) -> list[_Open]:
        with self._lock:
            return list(self._open.pop(span_id, ()))

    def open_calls(self) -> int:
        """How many calls are open (for tests and diagnostics)."""
        with self._lock:
            return sum(len(calls) for calls in self._open.values())

    def _begin(self, span_id: str | None, model_dict: Any, operation: str,
               streaming: bool) -> None:
        if not span_id:
            log.debug("paid_hooks: a LlamaIndex model call without a span; not recorded")
            return
        provider = local_or_provider(model_dict)
        if provider is None:
            return  # a local model: no provider bills it
        # Calls already open in this same span are siblings (async embedding batches start
        # them all before sending any), not outer calls: keep this start from superseding
        # them by stepping their guards aside while it happens.
        siblings: list[_Open] = []
        if span_id in self._open:
            with self._lock:
                siblings = [c for c in self._open.get(span_id, ()) if c.guard is not None]
        for sibling in siblings:
            _release(sibling)
        try:
            handle = paid_hooks.start_call(
                provider=provider,
                operation=operation,
                request_model=request_model(model_dict),
                captured_by=CAPTURED_BY,
                streaming=streaming,
            )
        finally:
            for sibling in siblings:
                _guard(sibling)
        if not handle.recording:
            return  # a layer above already records this call
        call = _Open(handle, None, provider, streaming)
        if self.guards:
            _guard(call)
        self._push(span_id, call)

    # -- LLM events ---------------------------------------------------------------------

    def llm_start(self, span_id: str | None, model_dict: Any, *, completion: bool) -> None:
        """A chat or completion Start event."""
        try:
            operation = "chat"
            if completion and get(model_dict, "is_chat_model") is False:
                operation = "text_completion"
            streaming = bool(span_id) and _is_stream_method(str(span_id))
            self._begin(span_id, model_dict, operation, streaming)
        except Exception:
            log.warning("paid_hooks: LlamaIndex start event not recorded", exc_info=True)

    def llm_progress(self, span_id: str | None, response: Any) -> None:
        """A streamed chunk: remember its response id, model and usage (if any)."""
        if not span_id:
            return
        try:
            call = self._peek(span_id)
            if call is not None:
                _note(call, get(response, "raw"))
        except Exception:
            log.debug("paid_hooks: LlamaIndex progress event unreadable", exc_info=True)

    def llm_end(self, span_id: str | None, response: Any) -> None:
        """A chat or completion End event: the call succeeded (stream exhausted)."""
        call = self._end(span_id)
        if call is None:
            return
        handle = call.handle
        try:
            raw = get(response, "raw")
            if call.streaming:
                _note(call, raw)
                usage_raw = call.usage_raw
            else:
                usage_raw = raw
            usage = usage_from_raw(usage_raw)
            response_id = as_str(get(raw, "id")) or call.response_id
            response_model = as_str(get(raw, "model")) or call.response_model
            if usage is None:
                handle.usage_unknown(self._no_usage_reason(call), response_model=response_model,
                                     response_id=response_id)
                return
            handle.finish(usage, response_model=response_model, response_id=response_id,
                          service_tier=as_str(get(usage_raw, "service_tier")))
        except Exception:
            log.warning("paid_hooks: LlamaIndex response unreadable", exc_info=True)
            handle.usage_unknown("unreadable_response")

    @staticmethod
    def _no_usage_reason(call: _Open) -> str:
        if not call.streaming:
            return "usage_not_in_response"
        if call.response_id is not None and not call.finished:
            return "stream_closed_early"  # the connection ended before the last chunk
        if call.provider in OPENAI_FAMILY:
            return OPENAI_STREAM_USAGE_HINT
        return "stream_usage_not_reported"

    def exception(self, span_id: str | None, exc: BaseException | None) -> None:
        """``ExceptionEvent``: a stream raised, or was closed before its end."""
        call = self._end(span_id)
        if call is None:
            return
        try:
            self._end_failed(call, exc)
        except Exception:
            log.warning("paid_hooks: LlamaIndex exception event not recorded", exc_info=True)
            call.handle.usage_unknown("unreadable_response")

    @staticmethod
    def _end_failed(call: _Open, exc: BaseException | None) -> None:
        handle = call.handle
        usage = usage_from_raw(call.usage_raw)
        if usage is not None:  # the usage arrived before the stream was given up
            handle.finish(usage, response_model=call.response_model,
                          response_id=call.response_id,
                          service_tier=as_str(get(call.usage_raw, "service_tier")))
        elif isinstance(exc, GeneratorExit) or exc is None:
            handle.usage_unknown("stream_closed_early", response_model=call.response_model,
                                 response_id=call.response_id)
        elif call.response_id is not None:
            # Chunks were served, so the provider billed something we never saw.
            handle.usage_unknown(f"stream_failed:{type(exc).__qualname__}",
                                 response_model=call.response_model,
                                 response_id=call.response_id)
        else:
            handle.fail(exc)

    # -- embeddings ---------------------------------------------------------------------

    def embedding_start(self, span_id: str | None, model_dict: Any) -> None:
        try:
            self._begin(span_id, model_dict, "embeddings", False)
        except Exception:
            log.warning("paid_hooks: LlamaIndex embedding start not recorded", exc_info=True)

    def embedding_end(self, span_id: str | None, chunks: Any) -> None:
        """An embedding batch finished. Its usage never reaches LlamaIndex: estimate it.

        Runs only when no lower layer recorded the request (which would have superseded
        this handle with the provider's measured count).
        """
        call = self._end(span_id)
        if call is None:
            return
        handle = call.handle
        if not handle.recording:
            return
        try:
            tokens = estimate_tokens(chunks or ())
            handle.finish(paid_hooks.Usage(input_tokens=tokens, output_tokens=0,
                                           estimated=True))
        except Exception:
            log.warning("paid_hooks: LlamaIndex embedding not estimated", exc_info=True)
            handle.usage_unknown("embedding_usage_not_reported")

    # -- spans --------------------------------------------------------------------------

    def span_exit(self, span_id: str, result: Any) -> None:
        """The dispatcher span returned. Streams stay open until their End event."""
        if span_id not in self._open:
            return  # most spans are not model calls (a dict look-up is atomic: no lock)
        try:
            with self._lock:
                calls = list(self._open.get(span_id, ()))
            if not calls:
                return
            streamed = inspect.isgenerator(result) or inspect.isasyncgen(result)
            for call in calls:
                _release(call)
            if streamed:
                self._watch(span_id, result, calls)
                return
            for call in calls:
                if not call.streaming:
                    self._discard(span_id, call)
                    call.handle.usage_unknown("no_end_event")
                else:
                    self._watch(span_id, result, [call])
        except Exception:
            log.warning("paid_hooks: LlamaIndex span exit not handled", exc_info=True)

    def span_drop(self, span_id: str, err: BaseException | None) -> None:
        """The dispatcher span raised: every call still open in it failed."""
        if span_id not in self._open:
            return
        try:
            for call in self._take_all(span_id):
                _release(call)
                if call.streaming and call.response_id is not None:
                    self._end_failed(call, err)
                else:
                    call.handle.fail(err if err is not None else "error")
        except Exception:
            log.warning("paid_hooks: LlamaIndex span drop not handled", exc_info=True)

    def _discard(self, span_id: str, call: _Open) -> bool:
        with self._lock:
            calls = self._open.get(span_id)
            if not calls:
                return False
            for i, candidate in enumerate(calls):
                if candidate is call:
                    del calls[i]
                    if not calls:
                        del self._open[span_id]
                    return True
            return False

    def _watch(self, span_id: str, stream: Any, calls: list[_Open]) -> None:
        """Record a stream that is garbage-collected without ever being started."""
        if stream is None:
            return
        with contextlib.suppress(TypeError):  # not weakly referenceable: not watched
            on_collect(stream, self._abandoned, span_id, calls)

    def _abandoned(self, span_id: str, calls: list[_Open]) -> None:
        """A stream was garbage-collected without ever being started."""
        for call in calls:
            if not self._discard(span_id, call):
                continue
            if call.provider in OPENAI_FAMILY and call.response_id is None:
                # llama-index-llms-openai sends the request on the first ``next()``:
                # a stream never iterated never reached OpenAI: there is no call to record.
                continue
            call.handle.usage_unknown("stream_not_consumed",
                                      response_model=call.response_model,
                                      response_id=call.response_id)

    def close_all(self, reason: str) -> None:
        """Give up every open call (the handler is being removed)."""
        with self._lock:
            pending = [call for calls in self._open.values() for call in calls]
            self._open.clear()
        for call in pending:
            _release(call)  # exact when called in the call's own context, harmless otherwise
            call.handle.usage_unknown(reason, response_model=call.response_model,
                                      response_id=call.response_id)


def _note(call: _Open, raw: Any) -> None:
    """Keep what a streamed ``raw`` chunk says about the response."""
    if raw is None:
        return
    if call.response_id is None:
        call.response_id = as_str(get(raw, "id"))
    if call.response_model is None:
        call.response_model = as_str(get(raw, "model"))
    if get(raw, "usage") is not None:
        call.usage_raw = raw
    if not call.finished:
        choices = get(raw, "choices")
        if isinstance(choices, (list, tuple)) and choices:
            call.finished = get(choices[0], "finish_reason") is not None


