"""Recording one OpenAI SDK method call, shared by the wrapper and the patches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import paid_hooks
from paid_hooks_openai._usage import PROVIDER, _get, chat_usage

CAPTURED_BY = "openai"


def _start(kwargs: dict[str, Any], operation: str) -> paid_hooks.CallHandle:
    return paid_hooks.start_call(
        provider=PROVIDER,
        operation=operation,
        request_model=kwargs.get("model"),
        captured_by=CAPTURED_BY,
        streaming=bool(kwargs.get("stream")),
    )


def _finish_chat(handle: paid_hooks.CallHandle, response: Any) -> None:
    try:
        handle.finish(
            chat_usage(_get(response, "usage")),
            response_model=_get(response, "model"),
            response_id=_get(response, "id"),
            service_tier=_get(response, "service_tier"),
        )
    except Exception:
        handle.usage_unknown("unreadable_response")


def record_chat_create(create: Callable[..., Any], args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
    """Call ``create`` (sync) and record it. Streams are passed through unrecorded here."""
    if kwargs.get("stream"):
        return create(*args, **kwargs)
    handle = _start(kwargs, "chat")
    with handle.exclusive():
        try:
            response = create(*args, **kwargs)
        except BaseException as exc:
            handle.fail(exc)
            raise
    _finish_chat(handle, response)
    return response


async def record_chat_create_async(create: Callable[..., Awaitable[Any]],
                                   args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Await ``create`` (async) and record it."""
    if kwargs.get("stream"):
        return await create(*args, **kwargs)
    handle = _start(kwargs, "chat")
    with handle.exclusive():
        try:
            response = await create(*args, **kwargs)
        except BaseException as exc:
            handle.fail(exc)
            raise
    _finish_chat(handle, response)
    return response
