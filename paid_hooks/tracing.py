"""``paid_tracing``: one trace per business outcome, as a decorator or a context manager.

Nesting rules:

* an inner ``paid_tracing`` with the SAME customer and agent joins the enclosing trace
  (a helper decorated for standalone use adds no second outcome);
* one with a DIFFERENT customer or agent starts a trace of its own: a new root span,
  linked to the enclosing one, whose costs go to its own outcome;
* leaving any scope restores exactly the state before it was entered.

A ``paid_tracing`` trace is always a new OpenTelemetry trace (a root span), linked to the
span that was current when it started (an HTTP request span, say), so that two outcomes
handled in one request never share a trace id.

Trace ids of the default set-up: when only this library's ledger sees the spans (no
tracer provider of the application, no OTLP export), a trace is a root context of ids
drawn here, and its trace id has the AWS X-Ray layout: the top 32 bits are the Unix time
in seconds when the trace began, the low 96 bits random (still a valid W3C trace id; its
random part is the one W3C Trace Context level 2 asks for); the root's span id is 64
random bits; neither id is ever 0. Trace ids then grow with time, so the ledger's rows
go in at the right edge of its trace-id indexes instead of dirtying a random B-tree page
each (a SQLite write of 200k rows: 5.3 instead of 7.9 µs a row, a gap that grows with
the ledger). Whenever a tracer provider makes the spans, its SDK draws the ids as usual.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, NamedTuple, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    DEFAULT_TRACE_STATE,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from paid_hooks import _runtime
from paid_hooks.attributes import PAID_AGENT_ID, PAID_CUSTOMER_ID
from paid_hooks.context import (
    _ACTIVE,
    Activation,
    TraceScope,
    TraceState,
    activate,
    deactivate,
)

__all__ = ["paid_tracing"]

log = logging.getLogger("paid_hooks")

F = TypeVar("F", bound=Callable[..., Any])

_NOT_ERRORS = (GeneratorExit, StopIteration, StopAsyncIteration)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


_getrandbits = random.getrandbits
_time = time.time
_SPAN_ID_MASK = (1 << 64) - 1
_SECONDS_MASK = (1 << 32) - 1
_tuple_new = tuple.__new__


def _tuple_span_context_matches() -> bool:
    """Whether ``SpanContext(trace_id, span_id, False, SAMPLED)`` of valid ids is the tuple
    ``(trace_id, span_id, False, SAMPLED, DEFAULT_TRACE_STATE, True)`` in the installed
    OpenTelemetry (checked once, at import). A trace's root context is then built as that
    tuple: its constructor, a Python call taking keywords, only validates ids we draw valid."""
    try:
        made = SpanContext(trace_id=3 << 100, span_id=5, is_remote=False, trace_flags=_SAMPLED)
        built = _tuple_new(SpanContext, (3 << 100, 5, False, _SAMPLED, DEFAULT_TRACE_STATE,
                                         True))
        return (type(made) is SpanContext and tuple(made) == tuple(built)
                and (made.trace_id, made.span_id, made.is_remote, made.trace_flags,
                     made.trace_state, made.is_valid)
                == (built.trace_id, built.span_id, built.is_remote, built.trace_flags,
                    built.trace_state, built.is_valid))
    except Exception:
        return False


_TUPLE_SPAN_CONTEXT = _tuple_span_context_matches()


def _require_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"paid_tracing() needs {name} as a non-empty string, got {value!r}")
    return value


_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


def _metadata_attributes(metadata: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, (str, bool, int, float)):
            out[f"paid.metadata.{key}"] = value
        else:
            out[f"paid.metadata.{key}"] = json.dumps(value, default=str)
    return out


class _Opened(NamedTuple):
    """A trace scope ready to enter (``owns_span``: this ``paid_tracing`` opened it;
    ``in_otel_context``: entering makes its root span OpenTelemetry's current span: a span
    of the tracer, ended on leaving; an opened root without it is our own
    ``NonRecordingSpan``, with nothing to end).

    This and :class:`_Entered` are built as ``_tuple_new(cls, (fields...))``: the tuple a
    NamedTuple is, without its generated ``__new__`` (a Python call, 1.5x the cost)."""

    scope: TraceScope
    owns_span: bool
    in_otel_context: bool


class _Entered(NamedTuple):
    """One entry into an opened scope, with what leaving it undoes."""

    opened: _Opened
    activation: Activation
    otel_token: object | None


class paid_tracing:
    """A trace standing for one business outcome of ``external_customer_id``.

    As a decorator it wraps sync and async functions, and sync and async generators
    (the trace then stays active for the whole iteration, as a streaming endpoint needs).
    As a context manager it works with ``with`` and ``async with`` (a "manual trace").
    Raises :class:`ValueError` at construction for a missing customer or agent id; after
    that nothing it does raises into the caller.
    """

    def __init__(self, external_customer_id: str, *, external_agent_id: str,
                 metadata: Mapping[str, Any] | None = None) -> None:
        # The usual plain, non-blank strings are accepted here; anything else is checked
        # (and reported) by _require_id: two calls fewer per trace.
        self.external_customer_id = (
            external_customer_id if type(external_customer_id) is str
            and external_customer_id.strip()
            else _require_id(external_customer_id, "external_customer_id"))
        self.external_agent_id = (
            external_agent_id if type(external_agent_id) is str
            and external_agent_id.strip()
            else _require_id(external_agent_id, "external_agent_id"))
        self.metadata: Mapping[str, Any] = (MappingProxyType(dict(metadata)) if metadata
                                            else _NO_METADATA)
        self._entries: dict[int, _Entered] = {}

    # -- building blocks ----------------------------------------------------------------

    def _open(self) -> _Opened | None:
        try:
            active = _ACTIVE.get()
            outer = active.scope if active is not None else None
            if (outer is not None and outer.external_customer_id == self.external_customer_id
                    and outer.external_agent_id == self.external_agent_id):
                return _tuple_new(_Opened, (outer, False, False))
            runtime = _runtime._runtime or _runtime.get_runtime()
            span: trace.Span
            ledger_only = runtime.pipeline.ledger_only()
            if ledger_only:
                # Only the ledger would see this span, and it stores no trace spans: a
                # root context (fresh ids, time-ordered) is all we need. It stays out of
                # OpenTelemetry's current context: the application's own spans keep
                # their parent (no span nobody exports becomes their root), and SDKs
                # with built-in tracing (anthropic) see no trace to propagate.
                # Trace id: Unix seconds, then 96 random bits (see the module docstring);
                # written out, not a helper: one Python call fewer per trace.
                bits = _getrandbits(160)  # the trace id's random part and the span id
                trace_id = ((int(_time()) & _SECONDS_MASK) << 96) | (bits >> 64)
                span_id = bits & _SPAN_ID_MASK
                while not (trace_id and span_id):
                    bits = _getrandbits(160)
                    trace_id = ((int(_time()) & _SECONDS_MASK) << 96) | (bits >> 64)
                    span_id = bits & _SPAN_ID_MASK
                span = NonRecordingSpan(
                    _tuple_new(SpanContext, (trace_id, span_id, False, _SAMPLED,
                                             DEFAULT_TRACE_STATE, True))
                    if _TUPLE_SPAN_CONTEXT else
                    SpanContext(trace_id, span_id, False, _SAMPLED))
            else:
                link_to = (outer.root_span if outer is not None
                           else trace.get_current_span()).get_span_context()
                span = runtime.tracer.start_span(
                    "paid.trace",
                    context=otel_context.Context(),
                    kind=SpanKind.INTERNAL,
                    attributes=_metadata_attributes(self.metadata) | {
                        PAID_CUSTOMER_ID: self.external_customer_id,
                        PAID_AGENT_ID: self.external_agent_id},
                    links=[Link(link_to)] if link_to.is_valid else None,
                )
                ctx = span.get_span_context()
                trace_id = ctx.trace_id if ctx.is_valid else secrets.randbits(128)
            scope = TraceScope(trace_id, self.external_customer_id, self.external_agent_id,
                               self.metadata, span, TraceState())
            return _tuple_new(_Opened, (scope, True, not ledger_only))
        except Exception:
            log.warning("paid_hooks: could not start a trace; running untraced", exc_info=True)
            return None

    @staticmethod
    def _close(opened: _Opened | None, error: BaseException | None) -> None:
        # A root that stays out of OpenTelemetry's context (ledger only) is our own
        # NonRecordingSpan, whose set_status and end do nothing: skipped.
        if opened is None or not (opened.owns_span and opened.in_otel_context):
            return
        try:
            span = opened.scope.root_span
            if error is not None and not isinstance(error, _NOT_ERRORS):
                span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            span.end()
        except Exception:
            log.warning("paid_hooks: could not end a trace", exc_info=True)

    @staticmethod
    def _enter(opened: _Opened | None) -> _Entered | None:
        if opened is None:
            return None
        try:
            activation = activate(opened.scope)
            token = None
            if opened.in_otel_context:
                token = otel_context.attach(
                    trace.set_span_in_context(opened.scope.root_span))
            return _tuple_new(_Entered, (opened, activation, token))
        except Exception:
            log.warning("paid_hooks: could not activate a trace", exc_info=True)
            return None

    @staticmethod
    def _leave(entered: _Entered | None) -> None:
        if entered is None:
            return
        if entered.otel_token is not None:
            with contextlib.suppress(Exception):
                otel_context.detach(cast(Any, entered.otel_token))
        deactivate(entered.activation)

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> paid_tracing:
        entered = self._enter(self._open())
        if entered is not None:
            self._entries[id(entered.activation)] = entered
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        current = _ACTIVE.get()
        entered = self._entries.pop(id(current), None) if current is not None else None
        if entered is None and self._entries:
            # Exited out of order: leave the most recent entry of this object.
            entered = self._entries.pop(next(reversed(self._entries)))
        if entered is not None:
            self._leave(entered)
            opened = entered.opened
            if opened.owns_span and opened.in_otel_context:  # as _close checks, one call less
                self._close(opened, exc)

    async def __aenter__(self) -> paid_tracing:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- decorator ----------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        if inspect.isasyncgenfunction(fn):
            return cast(F, self._wrap_async_generator(fn))
        if inspect.isgeneratorfunction(fn):
            return cast(F, self._wrap_generator(fn))
        if inspect.iscoroutinefunction(fn):
            return cast(F, self._wrap_coroutine(fn))
        return cast(F, self._wrap_function(fn))

    def _wrap_function(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            opened = self._open()
            entered = self._enter(opened)
            error: BaseException | None = None
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._leave(entered)
                self._close(opened, error)

        return traced

    def _wrap_coroutine(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            opened = self._open()
            entered = self._enter(opened)
            error: BaseException | None = None
            try:
                return await fn(*args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._leave(entered)
                self._close(opened, error)

        return traced

    def _wrap_generator(self, fn: Callable[..., Generator[Any, Any, Any]]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            gen = fn(*args, **kwargs)
            opened = self._open()
            error: BaseException | None = None
            try:
                step: Callable[[Any], Any] = gen.send
                arg: Any = None
                while True:
                    entered = self._enter(opened)
                    try:
                        item = step(arg)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        self._leave(entered)
                    try:
                        arg = yield item
                        step = gen.send
                    except GeneratorExit:
                        entered = self._enter(opened)
                        try:
                            gen.close()
                        finally:
                            self._leave(entered)
                        raise
                    except BaseException as exc:
                        step, arg = gen.throw, exc
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._close(opened, error)

        return traced

    def _wrap_async_generator(
        self, fn: Callable[..., AsyncGenerator[Any, Any]]
    ) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def traced(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            agen = fn(*args, **kwargs)
            opened = self._open()
            error: BaseException | None = None
            try:
                step: Callable[[Any], Any] = agen.asend
                arg: Any = None
                while True:
                    entered = self._enter(opened)
                    try:
                        item = await step(arg)
                    except StopAsyncIteration:
                        return
                    finally:
                        self._leave(entered)
                    try:
                        arg = yield item
                        step = agen.asend
                    except GeneratorExit:
                        entered = self._enter(opened)
                        try:
                            await agen.aclose()
                        finally:
                            self._leave(entered)
                        raise
                    except BaseException as exc:
                        step, arg = agen.athrow, exc
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._close(opened, error)

        return traced
