"""``PaidOpenAIAgentsHook``: per-run capture, ``Runner.run(agent, input, hooks=...)``.

Each model call is recorded from ``on_llm_end`` with THAT response's usage (never the
run's cumulative ``context.usage``), priced under THAT agent's model, so a handoff
between agents on different models is priced per agent. The call is started in
``on_llm_start`` so that its latency and its paid_hooks trace scope are captured when
the model is called.

Start and end are matched by the identity of the ``(context, agent)`` pair the SDK passes
to both callbacks, held through weak references: ``id()`` only picks the dict slot, an
entry matches only while its weak references still return these very objects (so a
reused id never matches a dead run's entry). Entries whose run context or agent has been
garbage-collected are swept out (amortised, as the map grows), and the map is bounded.
``RunHooks`` has no error callback, so a model call that raises never reaches
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
from typing import Any

from agents import RunHooks
from agents.tracing import get_current_span
from agents.usage import Usage as _AgentsUsage
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

import paid_hooks
from paid_hooks_openai_agents._coordination import Key, coordination
from paid_hooks_openai_agents._usage import (
    CAPTURED_BY,
    FAKE_RESPONSE_ID,
    OPERATION,
    agent_model_name,
    canonical_usage,
    output_response_id,
    usage_from_counts,
    zero_usage_reason,
)

__all__ = ["PaidOpenAIAgentsHook"]

log = logging.getLogger("paid_hooks.openai_agents")

_PENDING_LIMIT = 10_000
_SWEEP_MIN = 64
"""Dead entries (their run's model call raised) are swept when the map reaches this size,
then again at twice the size left after each sweep: amortised O(1) per call."""

_weakref = weakref.ref


def _ref(obj: Any) -> Callable[[], Any]:
    try:
        return _weakref(obj)
    except TypeError:
        return lambda: obj


def _response_usage(usage: Any) -> paid_hooks.Usage | None:
    """``canonical_usage(usage)``, with the same result, reading the SDK's own ``Usage``
    and its OpenAI detail models by plain attribute (every model call of a hooked run
    comes here: this skips the generic readers, about 10k CPU instructions per call).
    ``getattr`` with a default, as ``canonical_usage`` reads: a detail model built
    without a field (``model_construct``) reads as None there too."""
    if type(usage) is not _AgentsUsage:
        return canonical_usage(usage)
    in_details, out_details = usage.input_tokens_details, usage.output_tokens_details
    if type(in_details) is not InputTokensDetails or type(out_details) is not OutputTokensDetails:
        return canonical_usage(usage)
    return usage_from_counts(usage.input_tokens, usage.output_tokens,
                             getattr(in_details, "cached_tokens", None),
                             getattr(in_details, "cache_write_tokens", None),
                             getattr(out_details, "reasoning_tokens", None))


_Pending = tuple[Callable[[], Any], Callable[[], Any], paid_hooks.CallHandle, Key | None]
"""(weak ref to the run context, weak ref to the agent, the call's handle, coordination key)."""


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
        self._pending: dict[tuple[int, int], list[_Pending]] = {}
        self._sweep_at = _SWEEP_MIN

    async def on_llm_start(self, context: Any, agent: Any, system_prompt: Any,
                           input_items: Any) -> None:
        try:
            self._start(context, agent)
        except Exception:
            log.warning("paid_hooks: openai_agents hook could not start a call", exc_info=True)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        try:
            pending = self._take(context, agent)
            if pending is None:
                handle = self._new_handle(agent)
            else:
                key = pending[3]
                if key is not None and coordination.settle(key):
                    return  # the tracing processor recorded this call
                handle = pending[2]
            if getattr(response, "response_id", None) == FAKE_RESPONSE_ID:
                handle.streaming = True
            # read on the pipeline worker (_response_reading): the run goes on meanwhile
            handle.finish_later(_response_reading, (response, agent, handle.request_model))
        except Exception:
            log.warning("paid_hooks: openai_agents hook could not record a call", exc_info=True)

    # -- internals ------------------------------------------------------------------------

    def _new_handle(self, agent: Any) -> paid_hooks.CallHandle:
        return paid_hooks.start_call(provider=self.provider, operation=OPERATION,
                                     request_model=agent_model_name(getattr(agent, "model", None)),
                                     captured_by=CAPTURED_BY)

    def _start(self, context: Any, agent: Any) -> None:
        model = getattr(agent, "model", None)
        handle = paid_hooks.start_call(
            provider=self.provider, operation=OPERATION,
            request_model=model if type(model) is str and model else agent_model_name(model),
            captured_by=CAPTURED_BY)
        key = _current_key() if coordination.processor_active else None
        if key is not None:
            coordination.expect(key, handle.request_model)
        try:  # the SDK's run contexts and agents (dataclasses) take weak references
            entry: _Pending = (_weakref(context), _weakref(agent), handle, key)
        except TypeError:
            entry = (_ref(context), _ref(agent), handle, key)
        slot = (id(context), id(agent))
        pending = self._pending
        with self._lock:
            entries = pending.get(slot)
            if entries is None or entries[0][0]() is not context or entries[0][1]() is not agent:
                pending[slot] = [entry]  # new, or a dead run's entry under a reused id
            else:
                entries.append(entry)  # the same agent calls its model again before the end
            if len(pending) >= self._sweep_at:
                self._sweep()
            if len(pending) > _PENDING_LIMIT:
                del pending[next(iter(pending))]  # the oldest

    def _sweep(self) -> None:
        """Drop the entries of runs that died (lock held)."""
        pending = self._pending
        for slot in [slot for slot, entries in pending.items()
                     if entries[0][0]() is None or entries[0][1]() is None]:
            del pending[slot]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(pending))

    def _take(self, context: Any, agent: Any) -> _Pending | None:
        slot = (id(context), id(agent))
        with self._lock:
            entries = self._pending.get(slot)
            if entries is None:
                return None
            first = entries[0]
            if first[0]() is not context or first[1]() is not agent:
                del self._pending[slot]  # a dead run's entry under a reused id
                return None
            if len(entries) == 1:
                del self._pending[slot]
                return first
            return entries.pop(0)


def _response_reading(source: tuple[Any, Any, str | None]) -> paid_hooks.CallReading:
    """What one model response reported (run on the pipeline worker): ``source`` is (the
    SDK's ``ModelResponse``, the agent, the model the call was started under).

    The id: the response's own, or the ``chatcmpl-...`` id its output items carry (the
    Chat Completions model reports none, or ``__fake_id__`` when streamed). The Chat
    Completions model tags its output with the model it actually called, which differs
    from the agent's when ``RunConfig(model=...)`` overrides it. A usage of zeros (or
    none) is usage unknown, for the reason :func:`zero_usage_reason` gives."""
    response, agent, request_model = source
    raw_id = getattr(response, "response_id", None)
    streamed = raw_id == FAKE_RESPONSE_ID
    response_id: str | None = raw_id if isinstance(raw_id, str) and not streamed else None
    sent_model: str | None = None
    if response_id is None:
        response_id, sent_model = output_response_id(getattr(response, "output", None))
    response_model = sent_model if sent_model and sent_model != request_model else None
    usage = _response_usage(getattr(response, "usage", None))
    if usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0):  # is_zero
        settings = getattr(agent, "model_settings", None)
        reason = zero_usage_reason(
            streamed=True if streamed else (False if response_id else None),
            include_usage=getattr(settings, "include_usage", None))
        return paid_hooks.CallReading(None, response_model, response_id, None, reason)
    return paid_hooks.CallReading(usage, response_model, response_id)
