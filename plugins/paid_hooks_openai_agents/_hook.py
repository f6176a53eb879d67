"""``PaidOpenAIAgentsHook``: per-run capture, ``Runner.run(agent, input, hooks=...)``.

Each model call is recorded from ``on_llm_end`` with THAT response's usage (never the
run's cumulative ``context.usage``), priced under THAT agent's model, so a handoff
between agents on different models is priced per agent. The call is started in
``on_llm_start`` so that its latency and its paid_hooks trace scope are captured when
the model is called.

Start and end are matched by the identity of the ``(context, agent)`` pair the SDK passes
to both callbacks, held through weak references (never ``id()``, which Python reuses):
an entry whose run context has been garbage-collected is dropped, and the list is
bounded. ``RunHooks`` has no error callback, so a model call that raises never reaches
``on_llm_end``: the hook alone records nothing for it (see the README).

Response ids: a Responses model reports ``resp_...``; the Chat Completions model reports
none (or ``__fake_id__`` when streamed), but tags its output items with the real
``chatcmpl-...`` id, which is used. The ledger keeps one row per response id and trace,
so provider instrumentation of the same call does not double count.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents import RunHooks
from agents.tracing import get_current_span

import paid_hooks
from paid_hooks_openai_agents._coordination import Key, coordination
from paid_hooks_openai_agents._usage import (
    CAPTURED_BY,
    FAKE_RESPONSE_ID,
    OPERATION,
    agent_model_name,
    canonical_usage,
    is_zero,
    output_response_id,
    zero_usage_reason,
)

__all__ = ["PaidOpenAIAgentsHook"]

log = logging.getLogger("paid_hooks.openai_agents")

_PENDING_LIMIT = 10_000


def _ref(obj: Any) -> Callable[[], Any]:
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


@dataclass
class _Pending:
    context: Callable[[], Any]
    agent: Callable[[], Any]
    handle: paid_hooks.CallHandle
    key: Key | None


def _current_key() -> Key | None:
    """(trace id, current span id) of the run's Agents trace, or None when not traced."""
    span = get_current_span()
    if span is None:
        return None
    trace_id, span_id = span.trace_id, span.span_id
    if not trace_id or not span_id or "no-op" in (trace_id, span_id):
        return None
    return trace_id, span_id


class PaidOpenAIAgentsHook(RunHooks[Any]):
    """Records every model call of the runs it is passed to. Never raises into the run.

    ``provider`` is the OpenTelemetry provider name used for pricing (``openai`` unless
    the agents' models call another provider's OpenAI-compatible endpoint). One instance
    may serve many concurrent runs.

    When the global processor is also active (``paid_hooks.instrument("openai_agents")``)
    the hook leaves the calls the processor records to it: one ledger row per call.
    """

    def __init__(self, *, provider: str = "openai") -> None:
        super().__init__()
        self.provider = provider
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []

    async def on_llm_start(self, context: Any, agent: Any, system_prompt: Any,
                           input_items: Any) -> None:
        try:
            self._start(context, agent)
        except Exception:
            log.warning("paid_hooks: openai_agents hook could not start a call", exc_info=True)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        try:
            self._end(context, agent, response)
        except Exception:
            log.warning("paid_hooks: openai_agents hook could not record a call", exc_info=True)

    # -- internals ------------------------------------------------------------------------

    def _new_handle(self, agent: Any) -> paid_hooks.CallHandle:
        return paid_hooks.start_call(provider=self.provider, operation=OPERATION,
                                     request_model=agent_model_name(getattr(agent, "model", None)),
                                     captured_by=CAPTURED_BY)

    def _start(self, context: Any, agent: Any) -> None:
        handle = self._new_handle(agent)
        key = _current_key() if coordination.processor_active else None
        if key is not None:
            coordination.expect(key, handle.request_model)
        entry = _Pending(_ref(context), _ref(agent), handle, key)
        with self._lock:
            self._pending = [p for p in self._pending
                             if p.context() is not None and p.agent() is not None]
            self._pending.append(entry)
            if len(self._pending) > _PENDING_LIMIT:
                del self._pending[0]

    def _take(self, context: Any, agent: Any) -> _Pending | None:
        with self._lock:
            for i, p in enumerate(self._pending):
                if p.context() is context and p.agent() is agent:
                    return self._pending.pop(i)
        return None

    def _end(self, context: Any, agent: Any, response: Any) -> None:
        pending = self._take(context, agent)
        key = pending.key if pending is not None else None
        if key is not None and coordination.settle(key):
            return  # the tracing processor recorded this call
        handle = pending.handle if pending is not None else self._new_handle(agent)
        try:
            self._record(handle, agent, response)
        except Exception:
            log.warning("paid_hooks: openai_agents hook could not read a response",
                        exc_info=True)
            handle.usage_unknown("unreadable_response")

    def _record(self, handle: paid_hooks.CallHandle, agent: Any, response: Any) -> None:
        raw_id = getattr(response, "response_id", None)
        streamed = raw_id == FAKE_RESPONSE_ID
        response_id: str | None = raw_id if isinstance(raw_id, str) and not streamed else None
        sent_model: str | None = None
        if response_id is None:
            response_id, sent_model = output_response_id(getattr(response, "output", None))
        if streamed:
            handle.streaming = True
        # The Chat Completions model tags its output with the model it actually called,
        # which differs from the agent's when RunConfig(model=...) overrides it.
        response_model = sent_model if sent_model and sent_model != handle.request_model else None
        usage = canonical_usage(getattr(response, "usage", None))
        if usage is None or is_zero(usage):
            settings = getattr(agent, "model_settings", None)
            reason = zero_usage_reason(
                streamed=True if streamed else (False if response_id else None),
                include_usage=getattr(settings, "include_usage", None))
            handle.usage_unknown(reason, response_model=response_model, response_id=response_id)
            return
        handle.finish(usage, response_model=response_model, response_id=response_id)
