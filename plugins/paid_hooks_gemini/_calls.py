"""Recording one Gemini API request; shared by the wrapper and the patches.

The SDK's public methods (``generate_content``, ``generate_content_stream``,
``embed_content``) may send several requests for one call: automatic function calling
and automatic continuation each send another ``generateContent``. Recording happens at
the SDK's per-request methods (``Models._generate_content``,
``_generate_content_stream``, ``_embed_content`` and their ``AsyncModels`` twins), so
every billed request gets its own row, whatever transport (httpx or aiohttp) sent it.

Each request runs inside ``handle.exclusive()``; a stream holds it around every read of
the underlying stream (the sync stream only sends its request on the first read). The
SDK's exceptions reach the caller unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import call_exclusive, call_exclusive_async, field
from paid_hooks_gemini._usage import (
    PROVIDER,
    VERTEX_PROVIDER,
    embed_usage,
    gemini_usage,
    model_name,
)

__all__ = [
    "CAPTURED_BY",
    "provider_of",
    "record_embed",
    "record_embed_async",
    "record_generate",
    "record_generate_async",
    "record_stream",
    "record_stream_async",
]

log = logging.getLogger("paid_hooks.gemini")

CAPTURED_BY = "gemini"


def provider_of(models: Any) -> str:
    """``gcp.vertex_ai`` for a Vertex AI client, else ``gcp.gemini``."""
    try:
        return VERTEX_PROVIDER if models._api_client.vertexai else PROVIDER
    except Exception:
        return PROVIDER


def _start(provider: str, operation: str, kwargs: dict[str, Any], *,
           streaming: bool) -> paid_hooks.CallHandle:
    return paid_hooks.start_call(provider=provider, operation=operation,
                                 request_model=model_name(kwargs.get("model")),
                                 captured_by=CAPTURED_BY, streaming=streaming)


def _finish_generate(handle: paid_hooks.CallHandle, response: Any) -> None:
    try:
        handle.finish(gemini_usage(field(response, "usage_metadata")),
                      response_model=model_name(field(response, "model_version")),
                      response_id=field(response, "response_id"))
    except Exception:
        log.warning("paid_hooks: could not read a Gemini response", exc_info=True)
        handle.usage_unknown("unreadable_response")


def _finish_embed(handle: paid_hooks.CallHandle, response: Any) -> None:
    try:
        handle.finish(embed_usage(response))
    except Exception:
        log.warning("paid_hooks: could not read a Gemini embedding", exc_info=True)
        handle.usage_unknown("unreadable_response")


def _record(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
            handle: paid_hooks.CallHandle, finish: Callable[[paid_hooks.CallHandle, Any],
                                                            None]) -> Any:
    if not handle.recording:
        return method(*args, **kwargs)
    response = call_exclusive(handle, method, args, kwargs)
    finish(handle, response)
    return response


async def _record_async(method: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                        kwargs: dict[str, Any], handle: paid_hooks.CallHandle,
                        finish: Callable[[paid_hooks.CallHandle, Any], None]) -> Any:
    if not handle.recording:
        return await method(*args, **kwargs)
    response = await call_exclusive_async(handle, method, args, kwargs)
    finish(handle, response)
    return response


def record_generate(method: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any], provider: str) -> Any:
    """One ``generateContent`` request (sync)."""
    handle = _start(provider, "generate_content", kwargs, streaming=False)
    return _record(method, args, kwargs, handle, _finish_generate)


async def record_generate_async(method: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                                kwargs: dict[str, Any], provider: str) -> Any:
    """One ``generateContent`` request (async)."""
    handle = _start(provider, "generate_content", kwargs, streaming=False)
    return await _record_async(method, args, kwargs, handle, _finish_generate)


def record_embed(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 provider: str) -> Any:
    """One ``batchEmbedContents`` / ``embedContent`` / ``predict`` request (sync)."""
    handle = _start(provider, "embeddings", kwargs, streaming=False)
    return _record(method, args, kwargs, handle, _finish_embed)


async def record_embed_async(method: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                             kwargs: dict[str, Any], provider: str) -> Any:
    """One embeddings request (async)."""
    handle = _start(provider, "embeddings", kwargs, streaming=False)
    return await _record_async(method, args, kwargs, handle, _finish_embed)


class _StreamState:
    """What a stream has shown so far. Gemini sends a PARTIAL ``usageMetadata`` on
    every chunk and the complete one on the last: keep the last, never sum."""

    __slots__ = ("chunks", "finished", "handle", "metadata", "model", "response_id", "sent")

    def __init__(self, handle: paid_hooks.CallHandle, *, sent: bool) -> None:
        self.handle = handle
        self.sent = sent
        """The request was answered with a success status before the stream was read."""
        self.chunks = 0
        self.metadata: Any = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.finished = False
        """The last chunk was seen (a candidate has a finish reason, or the prompt was
        blocked): its usage is the complete one."""

    def observe(self, chunk: Any) -> None:
        self.chunks += 1
        try:
            metadata = field(chunk, "usage_metadata")
            if metadata is not None:
                self.metadata = metadata
            self.model = model_name(field(chunk, "model_version")) or self.model
            self.response_id = field(chunk, "response_id") or self.response_id
            if any(field(c, "finish_reason") is not None for c in field(chunk, "candidates") or ()):
                self.finished = True
            if field(field(chunk, "prompt_feedback"), "block_reason") is not None:
                self.finished = True
        except Exception:
            log.warning("paid_hooks: could not read a Gemini stream chunk", exc_info=True)

    def end(self) -> None:
        """The stream ended (read to its end, or closed by the caller)."""
        try:
            if self.finished:
                self.handle.finish(gemini_usage(self.metadata), response_model=self.model,
                                   response_id=self.response_id)
            else:
                self.handle.usage_unknown("stream_closed_early", response_model=self.model,
                                          response_id=self.response_id)
        except Exception:
            log.warning("paid_hooks: could not record a Gemini stream", exc_info=True)
            self.handle.usage_unknown("unreadable_response")

    def error(self, exc: BaseException) -> None:
        """The stream raised. Before the request was answered, it failed (nothing billed);
        after, the generation was cut short (billed, usage lost)."""
        if not self.sent and self.chunks == 0:
            self.handle.fail(exc)  # an API error (or a transport failure) bills nothing
        else:
            self.handle.usage_unknown("stream_error", response_model=self.model,
                                      response_id=self.response_id)


def record_stream(method: Callable[..., Iterator[Any]], args: tuple[Any, ...],
                  kwargs: dict[str, Any], provider: str) -> Iterator[Any]:
    """One ``streamGenerateContent`` request (sync generator, like the SDK's)."""
    handle = _start(provider, "generate_content", kwargs, streaming=True)
    if not handle.recording:
        yield from method(*args, **kwargs)
        return
    state = _StreamState(handle, sent=False)
    inner: Iterator[Any] | None = None
    try:
        while True:
            with handle.exclusive():
                if inner is None:
                    inner = iter(method(*args, **kwargs))
                try:
                    chunk = next(inner)
                except StopIteration:
                    break
            state.observe(chunk)
            yield chunk
    except GeneratorExit:
        state.end()
        raise
    except BaseException as exc:
        state.error(exc)
        raise
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            close()
    state.end()


async def record_stream_async(method: Callable[..., Awaitable[AsyncIterator[Any]]],
                              args: tuple[Any, ...], kwargs: dict[str, Any],
                              provider: str) -> AsyncIterator[Any]:
    """One ``streamGenerateContent`` request (async: the request is sent when awaited)."""
    handle = _start(provider, "generate_content", kwargs, streaming=True)
    if not handle.recording:
        return await method(*args, **kwargs)
    inner = await call_exclusive_async(handle, method, args, kwargs)
    return _iterate_async(inner, handle)


async def _iterate_async(inner: AsyncIterator[Any],
                         handle: paid_hooks.CallHandle) -> AsyncIterator[Any]:
    state = _StreamState(handle, sent=True)
    try:
        while True:
            with handle.exclusive():
                try:
                    chunk = await inner.__anext__()
                except StopAsyncIteration:
                    break
            state.observe(chunk)
            yield chunk
    except GeneratorExit:
        state.end()
        raise
    except BaseException as exc:
        state.error(exc)
        raise
    finally:
        aclose = getattr(inner, "aclose", None)
        if aclose is not None:
            await aclose()
    state.end()
