"""Adding the tracing processor to the Agents SDK, and making it inert again.

``instrument()`` adds ONE :class:`PaidTracingProcessor` with ``agents.add_trace_processor``,
which keeps every processor already registered (including the SDK's default one that
exports traces to OpenAI's backend: we never change the user's tracing settings).

The public API cannot remove a single processor without replacing the whole list (and
so the user's own choices), so ``uninstrument()`` leaves the processor registered but
inert: it records nothing until the next ``instrument()``, which re-activates the same
instance, and registers it again if it is no longer in the current provider's list (the
application replaced the provider with ``set_trace_provider`` or the list with
``set_trace_processors``). Registering twice with one provider would still be harmless:
spans are recorded once per span id.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from paid_hooks_openai_agents._coordination import coordination

if TYPE_CHECKING:
    from paid_hooks_openai_agents._processor import PaidTracingProcessor

__all__ = ["install", "processor", "uninstall"]


_lock = threading.Lock()
_processor: PaidTracingProcessor | None = None
_providers: weakref.WeakSet[Any] = weakref.WeakSet()
_strong_providers: list[Any] = []


def processor() -> PaidTracingProcessor:
    """The process-wide :class:`PaidTracingProcessor` (created on first use)."""
    global _processor
    with _lock:
        if _processor is None:
            from paid_hooks_openai_agents._processor import PaidTracingProcessor

            _processor = PaidTracingProcessor()
        return _processor


def _registered(provider: Any, proc: Any) -> bool:
    """Is ``proc`` in ``provider``'s processor list? Read from the SDK's default provider
    (no public getter exists); for other providers, whether we registered it there."""
    current = getattr(getattr(provider, "_multi_processor", None), "_processors", None)
    if isinstance(current, (tuple, list)):
        return any(p is proc for p in current)
    try:
        return provider in _providers
    except TypeError:
        return any(p is provider for p in _strong_providers)


def _remember(provider: Any) -> None:
    try:
        _providers.add(provider)
    except TypeError:
        _strong_providers.append(provider)


def install() -> None:
    """Idempotent. Raises ImportError when openai-agents is not installed."""
    from agents.tracing import add_trace_processor, get_trace_provider

    proc = processor()
    with _lock:
        provider = get_trace_provider()
        if not _registered(provider, proc):
            add_trace_processor(proc)
            _remember(provider)
        proc.active = True
        coordination.processor_active = True


def uninstall() -> None:
    """Idempotent; never raises. The processor stays registered but records nothing."""
    with _lock:
        if _processor is not None:
            _processor.active = False
        coordination.processor_active = False
