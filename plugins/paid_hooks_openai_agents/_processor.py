"""``PaidTracingProcessor``: the global path, an Agents ``TracingProcessor``.

It records one call per model span: ``GenerationSpanData`` (Chat Completions and other
adapters) and ``ResponseSpanData`` (Responses API). Their ``usage`` is set whether or
not the run includes sensitive data in traces; ``TaskSpanData``/``TurnSpanData`` carry
run and turn AGGREGATES of the same calls and are ignored, as is every other span.

The SDK calls processors synchronously, in the context of the code that opens and
closes the span: the model call's own task. So the paid_hooks trace scope of the run
is visible in ``on_span_start``, and the call can be run inside ``handle.fallback()``
from span start to span end: a provider layer that records the same HTTP call
(``paid_hooks.instrument("openai")``) then supersedes this record, being richer
(provider response id, served model, service tier). The processor records whatever no
lower layer recorded.

A model span carries no response id for Chat Completions, and a Responses span names
no model unless the run includes sensitive data (the SDK's default); the run hook, when
also attached, supplies the agent's model (see ``_coordination``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import OrderedDict
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from agents.tracing import GenerationSpanData, ResponseSpanData, Span, Trace, TracingProcessor

import paid_hooks
from paid_hooks_openai_agents._coordination import Key, coordination
from paid_hooks_openai_agents._usage import (
    CAPTURED_BY,
    FAKE_RESPONSE_ID,
    OPERATION,
    PROVIDER,
    canonical_usage,
    is_zero,
    zero_usage_reason,
)

__all__ = ["PaidTracingProcessor"]

log = logging.getLogger("paid_hooks.openai_agents")

_OPEN_LIMIT = 10_000


@dataclass
class _Open:
    handle: paid_hooks.CallHandle
    guard: AbstractContextManager[Any] | None
    key: Key | None


def _guard(handle: paid_hooks.CallHandle) -> AbstractContextManager[Any]:
    fallback = getattr(handle, "fallback", None)
    return fallback() if fallback is not None else handle.exclusive()


def _streamed_marker(output: Any) -> bool | None:
    """True/False when the span's (sensitive) output shows a stream or not; None if unknown."""
    if not isinstance(output, list) or not output:
        return None
    first = output[0]
    return bool(isinstance(first, dict) and first.get("id") == FAKE_RESPONSE_ID)


class PaidTracingProcessor(TracingProcessor):
    """Records every model span of every traced run. Never raises into the SDK.

    Inert until :attr:`active` is set (``paid_hooks.instrument("openai_agents")``); spans
    opened while active are still closed and recorded after it is cleared.
    """

    def __init__(self) -> None:
        self.active = False
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Open] = OrderedDict()

    # -- spans ----------------------------------------------------------------------------

    def on_span_start(self, span: Span[Any]) -> None:
        try:
            if self.active:
                self._start(span)
        except Exception:
            log.warning("paid_hooks: openai_agents could not start a model call", exc_info=True)

    def on_span_end(self, span: Span[Any]) -> None:
        try:
            coordination.forget((span.trace_id, span.span_id))
            with self._lock:
                opened = self._open.pop(span.span_id, None)
            if opened is not None:
                self._end(span, opened, sys.exc_info()[1])
        except Exception:
            log.warning("paid_hooks: openai_agents could not record a model call", exc_info=True)

    def on_trace_start(self, trace: Trace) -> None:
        return None

    def on_trace_end(self, trace: Trace) -> None:
        try:
            coordination.forget_trace(trace.trace_id)
        except Exception:
            log.debug("paid_hooks: openai_agents trace clean-up failed", exc_info=True)

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None

    # -- recording ------------------------------------------------------------------------

    def _start(self, span: Span[Any]) -> None:
        data = span.span_data
        if not isinstance(data, (GenerationSpanData, ResponseSpanData)):
            return
        span_id = span.span_id
        with self._lock:
            if span_id in self._open:  # registered twice with one provider
                return
        key: Key | None = (span.trace_id, span.parent_id) if span.parent_id else None
        model = data.model if isinstance(data, GenerationSpanData) else None
        if not model and key is not None:
            model = coordination.expected(key)[1]
        handle = paid_hooks.start_call(provider=PROVIDER, operation=OPERATION,
                                       request_model=model or None, captured_by=CAPTURED_BY)
        guard = None
        if handle.recording:
            guard = _guard(handle)
            guard.__enter__()
        with self._lock:
            self._open[span_id] = _Open(handle, guard, key)
            while len(self._open) > _OPEN_LIMIT:
                self._open.popitem(last=False)

    def _end(self, span: Span[Any], opened: _Open, exc: BaseException | None) -> None:
        if opened.guard is not None:
            try:
                opened.guard.__exit__(None, None, None)
            except Exception:
                log.debug("paid_hooks: openai_agents guard exit failed", exc_info=True)
        handle = opened.handle
        if not handle.recording or handle.done:
            return  # a lower layer (provider instrumentation) recorded this call
        try:
            self._record(span, handle, exc)
        except Exception:
            log.warning("paid_hooks: openai_agents could not read a model span", exc_info=True)
            handle.usage_unknown("unreadable_span")
        if opened.key is not None:
            coordination.mark_recorded(opened.key)

    def _record(self, span: Span[Any], handle: paid_hooks.CallHandle,
                exc: BaseException | None) -> None:
        data = span.span_data
        usage = canonical_usage(data.usage)
        response_model: str | None = None
        response_id: str | None = None
        if isinstance(data, ResponseSpanData):
            response = data.response
            if response is not None:
                response_model = getattr(response, "model", None) or None
                response_id = getattr(response, "id", None) or None
            zero_reason = "not_reported"  # the Responses API reports usage when streaming too
        else:
            streamed = _streamed_marker(data.output)
            if streamed:
                handle.streaming = True
            config = data.model_config if isinstance(data.model_config, dict) else {}
            zero_reason = zero_usage_reason(streamed=streamed,
                                            include_usage=bool(config.get("include_usage")))
        cancelled = isinstance(exc, (asyncio.CancelledError, GeneratorExit))
        if span.error is not None or (exc is not None and not cancelled):
            error_type = type(exc).__qualname__ if exc is not None else "model_error"
            billed = usage if usage is not None and not is_zero(usage) else None
            handle.fail(error_type, usage=billed, response_model=response_model,
                        response_id=response_id)
        elif usage is None:
            handle.usage_unknown("cancelled" if cancelled else "not_reported",
                                 response_model=response_model, response_id=response_id)
        elif is_zero(usage):
            handle.usage_unknown(zero_reason, response_model=response_model,
                                 response_id=response_id)
        else:
            handle.finish(usage, response_model=response_model, response_id=response_id)
