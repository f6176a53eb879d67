"""``PaidLlamaIndexHandler``: the event and span handlers on LlamaIndex's root dispatcher.

``PaidLlamaIndexHandler.register()`` (what ``paid_hooks.instrument("llamaindex")`` calls)
adds one event handler and one span handler to the ROOT dispatcher
(``llama_index.core.instrumentation.get_dispatcher()``); every module dispatcher
propagates to it, so every LLM and embedding call of the process is seen.
``unregister()`` removes exactly those two objects again.

The dispatcher calls handlers synchronously in the caller's thread and silently swallows
anything they raise, so the handlers keep their work small and log their own errors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from paid_hooks_llamaindex._tracker import CallTracker

try:
    from llama_index_instrumentation import get_dispatcher
    from llama_index_instrumentation.event_handlers import BaseEventHandler
    from llama_index_instrumentation.span_handlers import BaseSpanHandler
except ImportError:  # llama-index-core before the instrumentation package was split out
    from llama_index.core.instrumentation import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        get_dispatcher,
    )
    from llama_index.core.instrumentation.event_handlers import (  # type: ignore[no-redef,unused-ignore]
        BaseEventHandler,
    )
    from llama_index.core.instrumentation.span_handlers import (  # type: ignore[no-redef,unused-ignore]
        BaseSpanHandler,
    )

__all__ = ["TRACKER", "PaidLlamaIndexHandler", "PaidLlamaIndexSpanHandler"]

log = logging.getLogger("paid_hooks.llamaindex")

TRACKER = CallTracker()
"""The process-wide open-call table shared by every handler instance."""
TRACKER.guards = False  # until the span handler is attached (it releases the guards)

_lock = threading.RLock()
_registered: tuple[Any, PaidLlamaIndexHandler, PaidLlamaIndexSpanHandler] | None = None
_seen = threading.local()


def _llm_start(event: Any) -> None:
    TRACKER.llm_start(event.span_id, getattr(event, "model_dict", None), completion=False)


def _completion_start(event: Any) -> None:
    TRACKER.llm_start(event.span_id, getattr(event, "model_dict", None), completion=True)


def _progress(event: Any) -> None:
    TRACKER.llm_progress(event.span_id, getattr(event, "response", None))


def _end(event: Any) -> None:
    TRACKER.llm_end(event.span_id, getattr(event, "response", None))


def _exception(event: Any) -> None:
    TRACKER.exception(event.span_id, getattr(event, "exception", None))


def _embedding_start(event: Any) -> None:
    TRACKER.embedding_start(event.span_id, getattr(event, "model_dict", None))


def _embedding_end(event: Any) -> None:
    TRACKER.embedding_end(event.span_id, getattr(event, "chunks", None))


def _span_drop_event(event: Any) -> None:
    # With the span handler attached, its span_drop (which carries the exception) does
    # this; a hand-added event handler alone still closes the failed call.
    if not TRACKER.guards and event.span_id:
        TRACKER.span_drop(event.span_id, None)


_DISPATCH: dict[str, Callable[[Any], None]] = {
    "LLMChatStartEvent": _llm_start,
    "LLMCompletionStartEvent": _completion_start,
    "LLMChatInProgressEvent": _progress,
    "LLMCompletionInProgressEvent": _progress,
    "LLMChatEndEvent": _end,
    "LLMCompletionEndEvent": _end,
    "ExceptionEvent": _exception,
    "EmbeddingStartEvent": _embedding_start,
    "EmbeddingEndEvent": _embedding_end,
    "SpanDropEvent": _span_drop_event,
}


class PaidLlamaIndexHandler(BaseEventHandler):
    """Records every LlamaIndex LLM and embedding call with :func:`paid_hooks.start_call`.

    Attach it with ``PaidLlamaIndexHandler.register()`` (or
    ``paid_hooks.instrument("llamaindex")``); detach with ``unregister()``. Usage comes
    from ``response.raw`` (the provider's response: cache and reasoning included);
    streamed calls end on their End/Exception event, not when their span exits;
    embeddings are estimated unless a provider layer records them.
    """

    @classmethod
    def class_name(cls) -> str:
        return "PaidLlamaIndexHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        """Dispatch one LlamaIndex event. Never raises."""
        try:
            action = _DISPATCH.get(type(event).__name__)
            if action is None:
                return
            event_id = getattr(event, "id_", None)
            if event_id is not None:
                if getattr(_seen, "event_id", None) == event_id:
                    return  # the same event through a second registration
                _seen.event_id = event_id
            action(event)
        except Exception:
            log.warning("paid_hooks: LlamaIndex event %s not handled", type(event).__name__,
                        exc_info=True)

    @classmethod
    def register(cls, dispatcher: Any = None) -> PaidLlamaIndexHandler:
        """Attach the handlers to the root dispatcher (or ``dispatcher``). Idempotent."""
        global _registered
        with _lock:
            if _registered is not None:
                return _registered[1]
            target = dispatcher if dispatcher is not None else get_dispatcher()
            handler = cls()
            span_handler = PaidLlamaIndexSpanHandler()
            target.add_event_handler(handler)
            target.add_span_handler(span_handler)
            TRACKER.guards = True
            _registered = (target, handler, span_handler)
            return handler

    @classmethod
    def unregister(cls) -> None:
        """Detach what :meth:`register` attached (only those objects). Idempotent."""
        global _registered
        with _lock:
            if _registered is None:
                return
            target, handler, span_handler = _registered
            _registered = None
            TRACKER.guards = False
            try:
                target.event_handlers = [h for h in target.event_handlers if h is not handler]
                target.span_handlers = [h for h in target.span_handlers
                                        if h is not span_handler]
            finally:
                TRACKER.close_all("instrumentation_removed")

    @classmethod
    def registered(cls) -> PaidLlamaIndexHandler | None:
        """The handler :meth:`register` attached, if any."""
        with _lock:
            return _registered[1] if _registered is not None else None


class PaidLlamaIndexSpanHandler(BaseSpanHandler):  # type: ignore[type-arg,unused-ignore]
    """Ends calls whose span raised (no End event then) and releases fallback guards.

    Keeps no spans of its own (``new_span`` returns ``None``), so nothing accumulates.
    """

    @classmethod
    def class_name(cls) -> str:
        return "PaidLlamaIndexSpanHandler"

    def new_span(self, id_: str, bound_args: Any, instance: Any = None,
                 parent_span_id: str | None = None, tags: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, id_: str, bound_args: Any, instance: Any = None,
                             result: Any = None, **kwargs: Any) -> None:
        TRACKER.span_exit(id_, result)
        return None

    def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any = None,
                             err: BaseException | None = None, **kwargs: Any) -> None:
        TRACKER.span_drop(id_, err)
        return None
