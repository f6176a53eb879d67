"""``signal()``: record a business outcome, optionally carrying its trace's AI costs."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Mapping
from typing import Any

from paid_hooks import _runtime
from paid_hooks.context import _ACTIVE, TraceScope
from paid_hooks.errors import CostTracingError
from paid_hooks.model import SignalRecord
from paid_hooks.recorder import _otel_current

__all__ = ["signal"]

log = logging.getLogger("paid_hooks")
_warned_outside_trace = False

_getrandbits = random.getrandbits
"""A signal's default idempotency key: 128 random bits from the ``random`` module (seeded
from the OS, and again in a child after ``fork``), as the trace ids are. Not
``os.urandom``: a system call, which lets other threads take the GIL, and getting it back
from a busy thread costs the caller up to the switch interval (5 ms)."""


def _find_unserialisable(value: Any, path: str) -> str | None:
    try:
        json.dumps(value, allow_nan=False)
        return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}] (non-string key)"
            found = _find_unserialisable(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unserialisable(item, f"{path}[{index}]")
            if found:
                return found
    return path or "data"


def _serialise(data: Mapping[str, Any] | None) -> str | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"signal() data must be a dict, got {type(data).__name__}")
    try:
        return json.dumps(data, allow_nan=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        key = _find_unserialisable(data, "")
        raise TypeError(f"signal() data is not JSON-serialisable at key {key!r}") from None


def _claim_cost_tracing(scope: TraceScope) -> tuple[bool, bool]:
    """Returns (rejected, warn_now)."""
    state = scope.state
    with state.lock:
        if not state.cost_signal_emitted:
            state.cost_signal_emitted = True
            return False, False
        warn = not state.warned_second_cost_signal
        state.warned_second_cost_signal = True
        return True, warn


def signal(
    event_name: str,
    *,
    data: Mapping[str, Any] | None = None,
    enable_cost_tracing: bool = False,
    external_agent_id: str | None = None,
    external_customer_id: str | None = None,
    idempotency_key: str | None = None,
) -> SignalRecord:
    """Record the business event ``event_name`` in the current trace; return its record.

    Customer and agent default to the trace's. With ``enable_cost_tracing=True`` every AI
    call of the trace (before or after this signal) is attributed to this signal. Only one
    such signal per trace counts: a second is recorded as a plain signal with its rejection
    noted in the ledger (a warning is logged once per trace), or raises
    :class:`CostTracingError` in strict mode.

    Never blocks: the record is queued. ``data`` is copied, never mutated.

    Raises :class:`ValueError` when ``event_name``, the agent id or the customer id is
    missing, :class:`TypeError` (naming the key) when ``data`` is not JSON-serialisable.
    """
    global _warned_outside_trace
    if not isinstance(event_name, str) or not event_name.strip():
        raise ValueError(f"signal() needs a non-empty event_name, got {event_name!r}")
    active = _ACTIVE.get()
    scope = active.scope if active is not None else None
    agent = external_agent_id or (scope.external_agent_id if scope else None)
    if not agent:
        raise ValueError("signal() needs external_agent_id: pass it, or call signal() inside "
                         "paid_tracing(..., external_agent_id=...)")
    customer = external_customer_id or (scope.external_customer_id if scope else None)
    if not customer:
        raise ValueError("signal() needs external_customer_id: pass it, or call signal() inside "
                         "paid_tracing(external_customer_id, ...)")
    data_json = _serialise(data) if data is not None else None
    runtime = _runtime._runtime or _runtime.get_runtime()

    rejected, reason = False, None
    if enable_cost_tracing:
        if scope is None:
            if not _warned_outside_trace:
                _warned_outside_trace = True
                log.warning("paid_hooks: signal(%r, enable_cost_tracing=True) outside "
                            "paid_tracing: only AI calls in the same OpenTelemetry trace "
                            "are attributed to it", event_name)
        else:
            rejected, warn = _claim_cost_tracing(scope)
            if rejected:
                reason = "second_cost_signal_in_trace"
                if runtime.strict:
                    raise CostTracingError(
                        f"signal({event_name!r}, enable_cost_tracing=True): trace "
                        f"{scope.trace_id_hex} already has a cost-tracing signal")
                if warn:
                    log.warning("paid_hooks: signal(%r) is a second cost-tracing signal in "
                                "trace %s; recorded as a plain signal so costs are not "
                                "counted twice", event_name, scope.trace_id_hex)

    record = SignalRecord(  # positional, in field order: cheaper than keywords
        event_name, customer, agent, scope.trace_id if scope else 0,
        idempotency_key or "%032x" % _getrandbits(128),  # noqa: UP031
        enable_cost_tracing, time.time_ns(),
        data_json, rejected, reason)
    try:
        runtime.pipeline.submit_signal(record, scope, _otel_current())
    except Exception:
        log.warning("paid_hooks: could not record signal %r", event_name, exc_info=True)
    return record
