"""paid-hooks: attribute every AI provider cost to the business outcome it paid for.

Wrap each event handler in :func:`paid_tracing`, make AI calls inside it through a
provider wrapper or framework hook, and emit one :func:`signal` with
``enable_cost_tracing=True``. Every AI call of that trace is priced (off the caller's
thread) and attributed to that signal in the ledger.
"""

from __future__ import annotations

from paid_hooks import context
from paid_hooks._plugins import instrument, register_plugin, uninstrument, unregister_plugin
from paid_hooks._runtime import flush, initialize_tracing, shutdown
from paid_hooks._version import __version__
from paid_hooks.client import Paid
from paid_hooks.context import current_scope
from paid_hooks.errors import CostTracingError, PaidHooksError
from paid_hooks.hookspecs import hookimpl
from paid_hooks.model import (
    AICall,
    CallStatus,
    CostStatus,
    Price,
    PricedCall,
    SignalRecord,
    Unpriced,
    Usage,
)
from paid_hooks.pricing import load_price_overrides
from paid_hooks.recorder import CallHandle, CallReading, call_in_flight, start_call
from paid_hooks.signals import signal
from paid_hooks.tracing import paid_tracing

__all__ = [
    "AICall",
    "CallHandle",
    "CallReading",
    "CallStatus",
    "CostStatus",
    "CostTracingError",
    "Paid",
    "PaidHooksError",
    "Price",
    "PricedCall",
    "SignalRecord",
    "Unpriced",
    "Usage",
    "__version__",
    "call_in_flight",
    "context",
    "current_scope",
    "flush",
    "hookimpl",
    "initialize_tracing",
    "instrument",
    "load_price_overrides",
    "paid_tracing",
    "register_plugin",
    "shutdown",
    "signal",
    "start_call",
    "uninstrument",
    "unregister_plugin",
]
