"""The few exceptions this library may raise into user code."""

from __future__ import annotations

__all__ = ["CostTracingError", "PaidHooksError"]


class PaidHooksError(Exception):
    """Base class of this library's errors."""


class CostTracingError(PaidHooksError):
    """A second ``enable_cost_tracing=True`` signal in one trace, in strict mode only.

    Outside strict mode the second signal is recorded as a plain signal, a warning is
    logged once, and the ledger records the rejection.
    """
