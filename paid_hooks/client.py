"""``Paid``: a thin client object for code written against the original SDK's docs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from paid_hooks import _runtime
from paid_hooks.model import SignalRecord
from paid_hooks.signals import signal
from paid_hooks.tracing import paid_tracing

__all__ = ["Paid"]


class Paid:
    """Holds set-up options and delegates to the module-level functions.

    ``Paid(ledger=...).initialize_tracing()`` is ``paid_hooks.initialize_tracing(ledger=...)``;
    ``.trace(customer, fn, external_agent_id=...)`` runs ``fn`` inside ``paid_tracing``;
    ``.signal(...)`` is ``paid_hooks.signal(...)``.
    """

    def __init__(self, **settings: Any) -> None:
        self._settings = settings

    def initialize_tracing(self) -> None:
        _runtime.initialize_tracing(**self._settings)

    def trace(
        self,
        external_customer_id: str,
        fn: Callable[..., Any],
        *,
        external_agent_id: str,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        """Call ``fn(*args, **kwargs)`` inside a trace; an async ``fn`` returns its coroutine."""
        traced = paid_tracing(external_customer_id, external_agent_id=external_agent_id,
                              metadata=metadata)(fn)
        return traced(*args, **dict(kwargs or {}))

    def signal(self, event_name: str, **kwargs: Any) -> SignalRecord:
        return signal(event_name, **kwargs)

    def flush(self, timeout: float = 5.0) -> bool:
        return _runtime.flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        _runtime.shutdown(timeout)
