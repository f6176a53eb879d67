"""The one trace-context manager that every plugin shares.

The active trace ("scope": customer, agent, trace id) lives in ONE :class:`~contextvars.ContextVar`
holding an immutable :class:`Activation`. Entering a scope ``set``s a new activation that
remembers its own reset token and the activation it replaced; leaving resets with that
token. Nothing mutable is shared between activations, so concurrent tasks never see each
other's scope, and a nested exit restores exactly the outer state.

How the scope travels (the same rules as :mod:`contextvars`):

=============================  ==============================================
mechanism                      scope carried to the new task / thread?
=============================  ==============================================
``asyncio.create_task``        yes
``asyncio.gather``             yes
``asyncio.to_thread``          yes
``ThreadPoolExecutor.submit``  **no**: use :func:`wrap` or :class:`ContextExecutor`
``threading.Thread``           **no**: pass ``target=wrap(fn)``
``loop.run_in_executor``       **no**: pass ``wrap(fn)``
=============================  ==============================================
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from opentelemetry.trace import Span

from paid_hooks.model import TWINS, _quick_init

__all__ = [
    "Activation",
    "ContextExecutor",
    "TraceScope",
    "TraceState",
    "current_scope",
    "wrap",
]

P = ParamSpec("P")
R = TypeVar("R")


_STATE_LOCK = threading.Lock()
"""The lock of every :class:`TraceState` by default: it only guards two flags, set at most
once per trace, so one lock for all traces costs nothing, and no lock is made per trace."""


@dataclass(eq=False, slots=True)
class TraceState:
    """The little mutable state one trace needs, shared by every scope that joins it."""

    lock: threading.Lock = field(default=_STATE_LOCK)
    cost_signal_emitted: bool = False
    warned_second_cost_signal: bool = False


@_quick_init
@dataclass(frozen=True, eq=False, slots=True)
class TraceScope:
    """One trace that stands for one business outcome. Immutable.

    ``trace_id`` is the OpenTelemetry trace id of the root span; attribution of costs to
    signals is computed from it in the ledger.
    """

    trace_id: int
    external_customer_id: str
    external_agent_id: str
    metadata: Mapping[str, Any]
    root_span: Span
    state: TraceState

    @property
    def trace_id_hex(self) -> str:
        return format(self.trace_id, "032x")


@_quick_init
@dataclass(frozen=True, eq=False, slots=True)
class Activation:
    """One entry into a scope: the value of the context variable while it is active."""

    scope: TraceScope
    previous: Activation | None
    token: Token[Activation | None] | None = None


_ACTIVE: ContextVar[Activation | None] = ContextVar("paid_hooks_active_scope", default=None)
_set_token = Activation.__dict__["token"].__set__
_ActivationFields: Any = TWINS[Activation]


def current_scope() -> TraceScope | None:
    """The trace scope active in this context, or ``None`` outside any ``paid_tracing``."""
    activation = _ACTIVE.get()
    return activation.scope if activation is not None else None


def activate(scope: TraceScope) -> Activation:
    """Make ``scope`` current; return the activation that :func:`deactivate` undoes."""
    # Built as its twin and then made an Activation (see model._quick_init): a third of
    # the cost of the constructor; once per trace entry.
    activation = _ActivationFields()
    activation.scope = scope
    activation.previous = _ACTIVE.get()
    activation.token = None
    activation.__class__ = Activation
    # The token is only known after set(): the last step of building the activation,
    # before anything but this context (in this very call) can have seen it.
    _set_token(activation, _ACTIVE.set(activation))
    return activation  # type: ignore[no-any-return]


def deactivate(activation: Activation) -> None:
    """Undo :func:`activate`. Never raises, even from another context."""
    try:
        if activation.token is not None:
            _ACTIVE.reset(activation.token)
            return
    except ValueError:
        pass  # token created in another Context (e.g. an async generator finalised late)
    _ACTIVE.set(activation.previous)


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Return ``fn`` bound to a copy of the current context (the active trace included).

    Use it for work handed to a thread::

        threading.Thread(target=paid_hooks.context.wrap(worker)).start()
        loop.run_in_executor(None, paid_hooks.context.wrap(blocking_call))
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.run(fn, *args, **kwargs)

    return run_in_context


class ContextExecutor(ThreadPoolExecutor):
    """A :class:`~concurrent.futures.ThreadPoolExecutor` whose tasks keep the submitter's trace.

    Each ``submit`` (and so ``map``) runs the callable in a copy of the context current at
    submission time.
    """

    def submit(
        self, fn: Callable[..., R], /, *args: Any, **kwargs: Any
    ) -> Future[R]:
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)
