"""Process-wide registration through LangChain's supported configure hook.

``langchain_core.tracers.context.register_configure_hook`` makes every callback manager
add the value of a :class:`~contextvars.ContextVar` to its handlers. The variable's
DEFAULT is one handler instance, so it is active in every thread and event loop without
any per-context set-up. LangChain offers no way to unregister a hook, so
:func:`disable` switches that instance off instead: it then starts recording nothing
(runs already in progress still finish). Setting the variable to ``None`` would only
affect the current context, never other threads, so it is not used. LangChain classes
are never patched.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

from paid_hooks_langchain._callback import PaidLangChainCallback

__all__ = ["GlobalPaidLangChainCallback", "disable", "enable", "global_handler"]


class GlobalPaidLangChainCallback(PaidLangChainCallback):
    """The always-on instance behind ``paid_hooks.instrument("langchain")``."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = False

    def _starts_calls(self) -> bool:
        return self.enabled


_lock = threading.Lock()
_handler: GlobalPaidLangChainCallback | None = None


def global_handler() -> GlobalPaidLangChainCallback | None:
    """The registered global handler, or None before the first :func:`enable`."""
    return _handler


def enable() -> None:
    """Register the hook once (idempotent) and switch the global handler on."""
    global _handler
    from langchain_core.tracers.context import register_configure_hook

    with _lock:
        if _handler is None:
            handler = GlobalPaidLangChainCallback()
            var: ContextVar[PaidLangChainCallback | None] = ContextVar(
                "paid_hooks_langchain_callback", default=handler)
            register_configure_hook(var, inheritable=True)
            _handler = handler
        _handler.enabled = True


def disable() -> None:
    """Switch the global handler off (the hook stays registered but records nothing)."""
    with _lock:
        if _handler is not None:
            _handler.enabled = False
