"""Auto-instrumentation through botocore's own event system (no monkeypatching).

How it attaches (chosen because it uses only botocore's public extension points and is
undone exactly):

* ``botocore.register_initializer(fn)`` runs ``fn(session)`` for every botocore
  ``Session`` created afterwards (boto3 creates one per ``boto3.Session``, including its
  lazily created default session). ``fn`` registers our handlers on that session's event
  emitter, with ``unique_id`` s so registering twice is a no-op.
* A boto3 default session that already exists at :func:`patch` time gets the handlers too.
* A client copies its session's emitter when it is created, so every ``bedrock-runtime``
  client created from those sessions afterwards emits to our handlers:
  ``before-parameter-build`` (remember ``modelId``), ``before-call`` (start the call),
  ``after-call`` (record it, or wrap the stream / re-wrap the body in the response dict
  the caller receives) and ``after-call-error`` (connection errors).

Limits: a client created BEFORE :func:`patch` (or from a botocore session created before
it, other than boto3's default one) holds an emitter copy without our handlers and is not
seen: wrap it in ``PaidBedrock``. :func:`unpatch` unregisters the initializer and the
session handlers; clients created while instrumented keep inert copies (every handler
checks the module switch first), which become live again if :func:`patch` is called again.

Each handler catches everything: botocore would otherwise raise a handler's exception
into the caller's ``client.converse(...)``.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from paid_hooks_bedrock._calls import OPERATIONS, finish_response, start

__all__ = ["SERVICE", "is_active", "patch", "unpatch"]

log = logging.getLogger("paid_hooks_bedrock")

SERVICE = "bedrock-runtime"
"""botocore's hyphenised service id of the Bedrock Runtime API."""

_PARAMS_KEY = "paid_hooks_bedrock.params"
_HANDLE_KEY = "paid_hooks_bedrock.handle"
_UNIQUE_ID = "paid_hooks_bedrock:"

_lock = threading.Lock()
_active = False
_emitters: weakref.WeakSet[Any] = weakref.WeakSet()


def is_active() -> bool:
    return _active


def _on_parameters(params: Any = None, context: Any = None, **_: Any) -> None:
    """``before-parameter-build``: keep the API parameters the call is started with."""
    if not _active or not isinstance(context, dict) or not isinstance(params, Mapping):
        return
    try:
        context[_PARAMS_KEY] = {"modelId": params.get("modelId"), "body": params.get("body")}
    except Exception:
        log.debug("paid_hooks_bedrock: before-parameter-build failed", exc_info=True)


def _on_before_call(model: Any = None, params: Any = None, context: Any = None,
                    **_: Any) -> None:
    """``before-call``: start recording (inactive when a wrapper already records it)."""
    if not _active or not isinstance(context, dict) or _HANDLE_KEY in context:
        return
    try:
        operation = getattr(model, "name", None)
        if operation not in OPERATIONS:
            return
        api_params = context.get(_PARAMS_KEY) or {}
        url = params.get("url") if isinstance(params, Mapping) else None
        handle = start(operation, api_params, url if isinstance(url, str) else None)
        if handle.recording:
            context[_HANDLE_KEY] = (handle, operation, api_params.get("modelId"))
    except Exception:
        log.debug("paid_hooks_bedrock: before-call failed", exc_info=True)


def _pop_handle(context: Any) -> tuple[Any, str, Any] | None:
    if not isinstance(context, dict):
        return None
    entry = context.pop(_HANDLE_KEY, None)
    return entry if isinstance(entry, tuple) else None


def _on_after_call(http_response: Any = None, parsed: Any = None, context: Any = None,
                   **_: Any) -> None:
    """``after-call``: an HTTP error is a failed call; a success is recorded from ``parsed``."""
    entry = _pop_handle(context)
    if entry is None:
        return
    handle, operation, model_id = entry
    try:
        status = getattr(http_response, "status_code", 200)
        if isinstance(status, int) and status >= 300:
            error = parsed.get("Error") if isinstance(parsed, Mapping) else None
            code = context.get("error_code_override") or (
                error.get("Code") if isinstance(error, Mapping) else None)
            metadata = parsed.get("ResponseMetadata") if isinstance(parsed, Mapping) else None
            request_id = metadata.get("RequestId") if isinstance(metadata, Mapping) else None
            handle.fail(str(code or "ClientError"), response_id=request_id)
            return
        finish_response(handle, operation, model_id, parsed)
    except Exception:
        log.debug("paid_hooks_bedrock: after-call failed", exc_info=True)
        handle.usage_unknown("unreadable_response")


def _on_after_call_error(exception: Any = None, context: Any = None, **_: Any) -> None:
    """``after-call-error``: the request failed before a response was parsed."""
    entry = _pop_handle(context)
    if entry is None:
        return
    try:
        entry[0].fail(exception if isinstance(exception, BaseException) else "error")
    except Exception:
        log.debug("paid_hooks_bedrock: after-call-error failed", exc_info=True)


def _event_handlers() -> Iterator[tuple[str, Any]]:
    for operation in OPERATIONS:
        yield f"before-parameter-build.{SERVICE}.{operation}", _on_parameters
        yield f"before-call.{SERVICE}.{operation}", _on_before_call
        yield f"after-call.{SERVICE}.{operation}", _on_after_call
        yield f"after-call-error.{SERVICE}.{operation}", _on_after_call_error


def _attach(emitter: Any) -> None:
    for event, handler in _event_handlers():
        emitter.register(event, handler, unique_id=_UNIQUE_ID + event)
    _emitters.add(emitter)


def _detach(emitter: Any) -> None:
    for event, _handler in _event_handlers():
        try:
            emitter.unregister(event, unique_id=_UNIQUE_ID + event)
        except Exception:
            log.debug("paid_hooks_bedrock: could not unregister %s", event, exc_info=True)


def _session_initializer(session: Any) -> None:
    """Run by botocore for every new ``botocore.session.Session``. Never raises."""
    try:
        _attach(session.get_component("event_emitter"))
    except Exception:
        log.warning("paid_hooks_bedrock: could not attach to a botocore session",
                    exc_info=True)


def patch() -> None:
    """Idempotent; raises ImportError when botocore is not installed."""
    global _active
    import botocore
    import botocore.eventstream  # the stream wrapper needs it

    with _lock:
        if _active:
            return
        botocore.register_initializer(_session_initializer)
        _active = True
        boto3 = sys.modules.get("boto3")
        default_session = getattr(boto3, "DEFAULT_SESSION", None)
        if default_session is not None:
            try:
                _attach(default_session.events)
            except Exception:
                log.warning("paid_hooks_bedrock: could not attach to boto3's default session",
                            exc_info=True)


def unpatch() -> None:
    """Undo :func:`patch`. Idempotent; never raises."""
    global _active
    with _lock:
        if not _active:
            return
        _active = False
        botocore = sys.modules.get("botocore")
        try:
            if botocore is not None:
                botocore.unregister_initializer(_session_initializer)
        except ValueError:
            pass
        for emitter in list(_emitters):
            _detach(emitter)
        _emitters.clear()
