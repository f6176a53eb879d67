"""The recorder: the one door through which every plugin reports an AI call.

A plugin calls :func:`start_call` when a model call begins and then exactly one of
:meth:`CallHandle.finish`, :meth:`CallHandle.finish_later`, :meth:`CallHandle.fail` or
:meth:`CallHandle.usage_unknown` when it ends (a later call of any of them is ignored).
Only an immutable record is built and queued on the caller's thread; pricing and span
creation happen on the pipeline worker (and, with ``finish_later``, the plugin's reading
of the response too). Nothing here raises into the caller.

Exactly once: a layer that records a call runs the provider SDK inside
``with handle.exclusive():``. While that block runs, every lower layer's
:func:`start_call` (the same call seen by auto-instrumentation or by the httpx hook)
returns an inactive handle that records nothing. Layers that cannot wrap the call (a
framework callback on another thread) are de-duplicated in the ledger by provider
response id within the trace, keeping the richest record.

Fallback: a framework layer that only knows a call from its own events (and can at best
estimate its usage) runs it inside ``handle.fallback()`` instead. Lower layers then do
record the call, and the first of them to start recording inside the block makes the
fallback handle stand down (its ``finish``/``fail``/``usage_unknown`` record nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

from paid_hooks import _runtime
from paid_hooks.context import _ACTIVE, TraceScope
from paid_hooks.model import TWINS, AICall, CallStatus, Usage

__all__ = ["CallHandle", "CallReading", "call_in_flight", "start_call"]

log = logging.getLogger("paid_hooks.recorder")

_IN_FLIGHT: ContextVar[str | None] = ContextVar("paid_hooks_call_in_flight", default=None)
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY
_FALLBACKS: ContextVar[list[CallHandle] | None] = ContextVar("paid_hooks_fallback_calls",
                                                              default=None)
_fallback_lock = threading.Lock()
_time_ns = time.time_ns
_AICallFields: Any = TWINS[AICall]
_new_handle = object.__new__
_RESERVED: Any = object()
"""The handle's own exclusive block is taken, its token not yet known (see ``exclusive``)."""


def _otel_context_getter() -> Any:
    """OpenTelemetry's ``get_current``, as its context variable's own ``get`` when the
    runtime context is the usual context-variable one (decided once, at import): the same
    answer without two Python calls on every AI call."""
    runtime_context = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime_context) is ContextVarsRuntimeContext:
        variable = getattr(runtime_context, "_current_context", None)
        if isinstance(variable, ContextVar):
            return variable.get
    return otel_context.get_current


_otel_current = _otel_context_getter()


class CallReading(NamedTuple):
    """What a provider reported for one successful call, as the reader given to
    :meth:`CallHandle.finish_later` returns it."""

    usage: Usage | None
    """The usage; None when the response carried none (then recorded as usage unknown)."""
    response_model: str | None = None
    response_id: str | None = None
    service_tier: str | None = None
    unknown_reason: str | None = None
    """Why the usage is missing (``not_reported`` when not given); ignored with a usage."""


def call_in_flight() -> str | None:
    """Name of the plugin already recording the call running in this context, if any."""
    return _IN_FLIGHT.get()


class CallHandle:
    """One AI call in progress. Create it with :func:`start_call`."""

    __slots__ = (
        "_done", "_token", "batch", "captured_by", "operation", "parent", "provider",
        "recording", "request_model", "scope", "server_address", "start_time_ns", "streaming",
    )

    provider: str
    operation: str
    request_model: str | None
    captured_by: str
    streaming: bool
    server_address: str | None
    batch: bool
    recording: bool
    """False when another layer records this call (or tracing is off): all no-ops."""
    start_time_ns: int
    scope: TraceScope | None
    parent: otel_context.Context | None
    _done: bool
    _token: Any
    """The token of the handle's own exclusive block while entered (``_RESERVED`` between
    ``exclusive()`` and ``__enter__``)."""

    def __init__(self) -> None:
        raise TypeError("a CallHandle is made by paid_hooks.start_call(...)")

    def exclusive(self) -> AbstractContextManager[CallHandle]:
        """Run the provider call in this block: lower layers then record nothing.

        The block is the handle itself (no object per call); should it be taken (the
        same handle's block entered again before it is left), a block of its own.
        """
        if self._token is None:
            self._token = _RESERVED  # no call or backward jump in between: GIL-atomic
            return self
        return _Exclusive(self)

    def __enter__(self) -> CallHandle:
        """The handle's own :meth:`exclusive` block (use ``with handle.exclusive():``)."""
        if self.recording:
            self._token = _IN_FLIGHT.set(self.captured_by)
        return self

    def __exit__(self, *exc_info: object) -> None:
        token = self._token
        self._token = None
        if token is not None and token is not _RESERVED:
            try:
                _IN_FLIGHT.reset(token)
            except ValueError:  # entered in another context
                _IN_FLIGHT.set(None)

    def fallback(self) -> AbstractContextManager[CallHandle]:
        """Run the provider call in this block; a lower layer that records it wins.

        The first :func:`start_call` that starts recording inside the block (in this
        context or a task or thread copied from it) supersedes the innermost pending
        fallback handle: that handle's ``recording`` becomes False and its ``finish``,
        ``fail`` and ``usage_unknown`` record nothing. Without a lower layer the handle
        records as usual. The block may also be entered and exited by hand (``__enter__``
        in one framework callback, ``__exit__`` in a later one of the same context).
        """
        return _Fallback(self)

    def _supersede(self) -> None:
        self.recording = False
        self._done = True

    @property
    def done(self) -> bool:
        return self._done

    def finish(self, usage: Usage | None, *, response_model: str | None = None,
               response_id: str | None = None, service_tier: str | None = None,
               usage_unknown_reason: str | None = None) -> None:
        """The call succeeded. ``usage=None`` records it as ``usage_unknown``."""
        # The body of _submit, inlined: the most frequent way a call ends, one call less.
        if self._done:
            return
        self._done = True
        try:
            # The record is filled as a plain twin object and then made an AICall: every
            # field is set, in field order (the shortest way to build it, see
            # model._quick_init: no constructor call, no frozen __setattr__).
            call = _AICallFields()
            call.provider = self.provider
            call.operation = self.operation
            call.request_model = self.request_model
            call.response_model = response_model
            call.usage = usage
            call.captured_by = self.captured_by
            call.start_time_ns = self.start_time_ns
            call.end_time_ns = _time_ns()
            call.status = _OK
            call.error_type = None
            call.usage_unknown_reason = (usage_unknown_reason
                                         or (None if usage is not None else "not_reported"))
            call.response_id = response_id
            call.streaming = self.streaming
            call.service_tier = service_tier
            call.batch = self.batch
            call.server_address = self.server_address
            call.__class__ = AICall
            runtime = _runtime._runtime or _runtime.get_runtime()
            runtime.pipeline.submit_call(call, self.scope, self.parent)  # type: ignore[arg-type]
        except Exception:
            log.warning("paid_hooks: could not record an AI call", exc_info=True)

    def finish_later(self, read: Callable[[Any], CallReading], source: Any) -> None:
        """The call succeeded and ends now; what it reported is read later, on the pipeline
        worker, as ``read(source)``: a :class:`CallReading`, recorded as :meth:`finish`
        would record its fields (a None usage: usage unknown, with its
        ``unknown_reason``). Should ``read`` raise or return anything else, the call is
        recorded as usage unknown (``unreadable_response``) and the error logged.

        For a plugin whose reading of a response is work (parsing a streamed body,
        normalising an SDK's usage object): that work then costs the caller's thread
        nothing. ``source`` must not change afterwards (bytes, or SDK response objects
        the application is done with); ``read`` runs on another thread and must not call
        back into the recorder.
        """
        if self._done:
            return
        self._done = True
        try:
            later: _LaterCall = _new_handle(_LaterCall)
            later.handle = self
            later.end_time_ns = _time_ns()
            later.read = read
            later.source = source
            runtime = _runtime._runtime or _runtime.get_runtime()
            runtime.pipeline.submit_call(later, self.scope, self.parent)  # type: ignore[arg-type]
        except Exception:
            log.warning("paid_hooks: could not record an AI call", exc_info=True)

    def fail(self, error: BaseException | str, *, usage: Usage | None = None,
             response_model: str | None = None, response_id: str | None = None) -> None:
        """The call failed. Without ``usage`` it costs nothing (the provider billed nothing)."""
        error_type = error if isinstance(error, str) else type(error).__qualname__
        self._submit(CallStatus.ERROR, usage, response_model, response_id, None, error_type,
                     None)

    def usage_unknown(self, reason: str, *, response_model: str | None = None,
                      response_id: str | None = None) -> None:
        """The call was (probably) billed but its usage never arrived, e.g. a stream cut short."""
        self._submit(_OK, None, response_model, response_id, None, None, reason)

    def _submit(self, status: CallStatus, usage: Usage | None, response_model: str | None,
                response_id: str | None, service_tier: str | None, error_type: str | None,
                unknown_reason: str | None) -> None:
        if self._done:
            return
        self._done = True
        try:
            call = AICall(  # positional, in field order: cheaper than keywords
                self.provider, self.operation, self.request_model, response_model, usage,
                self.captured_by, self.start_time_ns, _time_ns(), status, error_type,
                unknown_reason, response_id, self.streaming, service_tier, self.batch,
                self.server_address)
            runtime = _runtime._runtime or _runtime.get_runtime()
            runtime.pipeline.submit_call(call, self.scope, self.parent)  # type: ignore[arg-type]
        except Exception:
            log.warning("paid_hooks: could not record an AI call", exc_info=True)


_OK = CallStatus.OK


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class _LaterCall:
    """A call ended by :meth:`CallHandle.finish_later`, queued for the pipeline worker,
    which turns it into its :class:`AICall` with :meth:`resolve` before anything else."""

    __slots__ = ("end_time_ns", "handle", "read", "source")

    handle: CallHandle
    end_time_ns: int
    read: Callable[[Any], CallReading]
    source: Any

    def resolve(self) -> AICall:
        """The record: the handle's call, as ``read(source)`` reports it (never raises
        for a failing reader: that is recorded as ``unreadable_response``)."""
        try:
            reading = self.read(self.source)
            if type(reading) is not CallReading:
                raise TypeError(f"a reader returned {type(reading).__qualname__}, "
                                "not a CallReading")
            usage, response_model, response_id, service_tier, reason = reading
            if usage is not None and type(usage) is not Usage and not isinstance(usage, Usage):
                raise TypeError(f"a reader returned usage {type(usage).__qualname__}")
        except Exception:
            log.warning("paid_hooks: could not read an AI call's response", exc_info=True)
            usage = response_model = response_id = service_tier = None
            reason = "unreadable_response"
        handle = self.handle
        call = _AICallFields()  # as in CallHandle.finish
        call.provider = handle.provider
        call.operation = handle.operation
        call.request_model = handle.request_model
        call.response_model = _text(response_model)
        call.usage = usage
        call.captured_by = handle.captured_by
        call.start_time_ns = handle.start_time_ns
        call.end_time_ns = self.end_time_ns
        call.status = _OK
        call.error_type = None
        call.usage_unknown_reason = (None if usage is not None
                                     else _text(reason) or "not_reported")
        call.response_id = _text(response_id)
        call.streaming = handle.streaming
        call.service_tier = _text(service_tier)
        call.batch = handle.batch
        call.server_address = handle.server_address
        call.__class__ = AICall
        result: AICall = call
        return result


class _Exclusive:
    """A block of :meth:`CallHandle.exclusive` while the handle's own one is taken."""

    __slots__ = ("_handle", "_token")

    def __init__(self, handle: CallHandle) -> None:
        self._handle = handle
        self._token: Token[str | None] | None = None

    def __enter__(self) -> CallHandle:
        handle = self._handle
        if handle.recording:
            self._token = _IN_FLIGHT.set(handle.captured_by)
        return handle

    def __exit__(self, *exc_info: object) -> None:
        token = self._token
        if token is not None:
            self._token = None
            try:
                _IN_FLIGHT.reset(token)
            except ValueError:
                _IN_FLIGHT.set(None)

class _Fallback:
    """The block of :meth:`CallHandle.fallback` (a class: cheaper than a generator)."""

    __slots__ = ("_entered", "_handle", "_pending", "_token")

    def __init__(self, handle: CallHandle) -> None:
        self._handle = handle
        self._entered = False
        self._pending: list[CallHandle] | None = None
        self._token: Token[list[CallHandle] | None] | None = None

    def __enter__(self) -> CallHandle:
        handle = self._handle
        if not handle.recording:
            return handle
        pending = _FALLBACKS.get()
        if not pending:  # None, or an emptied list left behind by an exit in another context
            pending = []
            self._token = _FALLBACKS.set(pending)
        with _fallback_lock:
            pending.append(handle)
        self._pending = pending
        self._entered = True
        return handle

    def __exit__(self, *exc_info: object) -> None:
        if not self._entered:
            return
        self._entered = False
        handle, pending, token = self._handle, self._pending, self._token
        self._pending = self._token = None
        if pending is not None:
            with _fallback_lock:
                if any(h is handle for h in pending):
                    pending.remove(handle)
        if token is not None:
            try:
                _FALLBACKS.reset(token)
            except ValueError:
                _FALLBACKS.set(None)


def start_call(
    *,
    provider: str,
    operation: str,
    request_model: str | None,
    captured_by: str,
    streaming: bool = False,
    server_address: str | None = None,
    batch: bool = False,
) -> CallHandle:
    """Begin recording one AI call; returns its handle. Never raises.

    ``provider`` is the OpenTelemetry ``gen_ai.provider.name`` (``openai``, ``anthropic``,
    ``aws.bedrock``, ``gcp.gemini``, ``mistral_ai``...); ``operation`` the
    ``gen_ai.operation.name`` (``chat``, ``embeddings``, ``generate_content``...);
    ``captured_by`` the plugin's name. The handle is inactive (``recording`` is False)
    when another layer is already recording this call in this context, or while
    OpenTelemetry instrumentation is suppressed (exporter traffic).
    """
    # The handle is filled here, slot by slot (CallHandle has no constructor of its own):
    # no keyword-argument call and no second frame on every AI call.
    handle: CallHandle = _new_handle(CallHandle)
    handle.provider = provider
    handle.operation = operation
    handle.request_model = request_model
    handle.captured_by = captured_by
    handle.streaming = streaming
    handle.server_address = server_address
    handle.batch = batch
    handle._token = None
    handle.start_time_ns = _time_ns()
    recording = _IN_FLIGHT.get() is None
    parent: otel_context.Context | None = None
    if recording:
        try:
            parent = _otel_current()
            recording = not parent.get(_SUPPRESS_KEY)
        except Exception:
            recording = True
    if recording:
        pending = _FALLBACKS.get()
        if pending:
            with _fallback_lock:
                if pending:
                    pending.pop()._supersede()
        activation = _ACTIVE.get()
        handle.scope = activation.scope if activation is not None else None
        handle.parent = parent if parent is not None else otel_context.Context()
        handle.recording = True
        handle._done = False
    else:
        handle.scope = handle.parent = None
        handle.recording = False
        handle._done = True
    return handle
