"""Recording streamed OpenAI calls: observers of stream items and the stream types returned.

A recorded ``stream=True`` call returns a :class:`PaidStream` / :class:`PaidAsyncStream`:
a subclass of the SDK's own ``openai.Stream`` / ``openai.AsyncStream`` that adopts the
SDK stream's state (same ``response``, same decoder, same items) and only routes the
iteration through an observer. Iteration, ``with``, ``close()``, ``.response`` and
``isinstance(s, openai.Stream)`` behave as on the SDK's stream.

The call is recorded exactly once, when the stream ends:

* exhausted: the usage seen (``finish``); no usage but the provider said the response was
  complete (``finish_reason``, a terminal event): ``usage_unknown("not_reported")``;
  no usage and no sign of completion: ``usage_unknown("stream_closed_early")``;
* closed by the caller (``close()``, leaving ``with``, or the SDK helpers closing the HTTP
  response), or garbage-collected, before the usage arrived:
  ``usage_unknown("stream_closed_early")``; if the usage already arrived, it is recorded;
* an exception while reading: the usage if already seen; ``fail`` (no charge) if nothing
  was received; else ``usage_unknown("stream_error:<ExceptionType>")``.
"""

from __future__ import annotations

import logging
import operator
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from openai import AsyncStream, Stream
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice

import paid_hooks
from paid_hooks.plugin_kit import as_str, field, field_reader, reads_from_dict
from paid_hooks_openai import _usage
from paid_hooks_openai._readers import Reading, read_responses

__all__ = [
    "ChatChunks",
    "EventStream",
    "Observer",
    "PaidAsyncStream",
    "PaidStream",
    "StreamRecord",
    "finish_with",
    "images_events",
    "responses_events",
    "transcription_events",
    "wrap_stream",
]

log = logging.getLogger("paid_hooks.openai")


def finish_with(handle: paid_hooks.CallHandle, reading: Reading) -> None:
    """Record ``reading`` on ``handle`` (exactly one of finish / fail / usage_unknown)."""
    if reading.failed:
        handle.fail(reading.failed, usage=reading.usage, response_model=reading.response_model,
                    response_id=reading.response_id)
    elif reading.usage is not None:
        handle.finish(reading.usage, response_model=reading.response_model,
                      response_id=reading.response_id, service_tier=reading.service_tier)
    else:
        handle.usage_unknown(reading.unknown_reason or "not_reported",
                             response_model=reading.response_model,
                             response_id=reading.response_id)


# -- observers ------------------------------------------------------------------------------


class Observer(Protocol):
    """Watches each item of one stream and knows what it reported so far."""

    completed: bool
    """The provider signalled the end of the response (usage may still be missing)."""

    def observe(self, item: Any) -> bool:
        """Look at one item; return False to hide it from the caller."""
        ...

    def reading(self) -> Reading: ...


_CHUNK = field_reader("id", "model", "service_tier", "usage", "choices")
_CHUNK_FIELDS = ("id", "model", "service_tier", "usage", "choices")
_chunk_values = operator.itemgetter(*_CHUNK_FIELDS)
_FROM_DICT = reads_from_dict(ChatCompletionChunk, *_CHUNK_FIELDS)
"""The SDK's chunks are read from their ``__dict__`` (what ``getattr`` reads, for less)."""


class ChatChunks:
    """``chat.completion.chunk`` items.

    With ``hide_usage_chunk`` (set when the plugin, not the caller, asked for
    ``include_usage``) the extra final chunk that has ``choices == []`` and a ``usage`` is
    consumed here and not shown to the caller. Chunks with empty choices and no usage (e.g.
    Azure's content-filter chunk) are always shown.

    Each chunk's id, model and tier are compared with the previous chunk's as they came
    (``_seen``) and only taken (last non-empty one wins) when they differ.
    """

    __slots__ = ("_seen", "completed", "hide_usage_chunk", "model", "response_id",
                 "service_tier", "usage")

    def __init__(self, hide_usage_chunk: bool) -> None:
        self.hide_usage_chunk = hide_usage_chunk
        self.completed = False
        self.usage: paid_hooks.Usage | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.service_tier: str | None = None
        self._seen: tuple[Any, Any, Any] = (None, None, None)

    def observe(self, item: Any) -> bool:
        values = None
        if _FROM_DICT and type(item) is ChatCompletionChunk:
            try:  # noqa: SIM105 (suppress() costs a call per chunk)
                values = _chunk_values(item.__dict__)
            except KeyError:  # a field missing from this chunk: read it as getattr would
                pass
        if values is None:
            values = _CHUNK(item)
        response_id, model, tier, raw_usage, choices = values
        if (response_id, model, tier) != self._seen:
            self._take(response_id, model, tier)
        if raw_usage is not None:
            self.usage = _usage.chat_usage(raw_usage) or self.usage
        if not self.completed and isinstance(choices, list):
            for choice in choices:
                if type(choice) is ChunkChoice:
                    try:
                        finish_reason = choice.finish_reason
                    except AttributeError:
                        finish_reason = None
                else:
                    finish_reason = field(choice, "finish_reason")
                if finish_reason:
                    self.completed = True
                    break
        return not (self.hide_usage_chunk and raw_usage is not None and not choices)

    def _take(self, response_id: Any, model: Any, tier: Any) -> None:
        """The last non-empty id, model and tier win."""
        self._seen = (response_id, model, tier)
        if isinstance(response_id, str) and response_id:
            self.response_id = response_id
        if isinstance(model, str) and model:
            self.model = model
        if isinstance(tier, str) and tier:
            self.service_tier = tier

    def reading(self) -> Reading:
        return Reading(usage=self.usage, response_model=self.model,
                       response_id=self.response_id, service_tier=self.service_tier,
                       unknown_reason="not_reported")


class EventStream:
    """Typed server events (``item.type``) where terminal events carry the usage.

    ``terminal`` maps an event type to the reader of its final :class:`Reading`; ``start``
    maps event types that name the response early (id, model) to a reader, so a stream cut
    short is still recorded under its response id.
    """

    __slots__ = ("completed", "last", "start", "terminal")

    def __init__(self, terminal: dict[str, Callable[[Any], Reading]],
                 start: dict[str, Callable[[Any], Reading]] | None = None) -> None:
        self.terminal = terminal
        self.start = start or {}
        self.completed = False
        self.last = Reading(usage=None, unknown_reason="not_reported")

    def observe(self, item: Any) -> bool:
        kind = field(item, "type")
        reader = self.terminal.get(kind) if isinstance(kind, str) else None
        if reader is not None:
            self.completed = True
            self.last = reader(item)
        elif isinstance(kind, str) and kind in self.start and not self.completed:
            self.last = self.start[kind](item)
        return True

    def reading(self) -> Reading:
        return self.last


def _responses_terminal(event: Any) -> Reading:
    return read_responses(field(event, "response"), {})


def _responses_start(event: Any) -> Reading:
    response = field(event, "response")
    return Reading(usage=None, response_model=as_str(field(response, "model")),
                   response_id=as_str(field(response, "id")), unknown_reason="not_reported")


def _responses_error(event: Any) -> Reading:
    return Reading(usage=None, unknown_reason="not_reported", failed="response.error")


def responses_events(hide_usage_chunk: bool = False) -> EventStream:
    """Responses API events: ``response.completed`` / ``.incomplete`` / ``.failed`` end it."""
    return EventStream(
        terminal={"response.completed": _responses_terminal,
                  "response.incomplete": _responses_terminal,
                  "response.failed": _responses_terminal,
                  "error": _responses_error},
        start={"response.created": _responses_start, "response.in_progress": _responses_start},
    )


def _images_terminal(event: Any) -> Reading:
    return Reading(usage=_usage.images_usage(field(event, "usage")),
                   unknown_reason="not_reported")


def images_events(hide_usage_chunk: bool = False) -> EventStream:
    """Image generation / edit events: the ``*.completed`` event carries the usage."""
    return EventStream(terminal={"image_generation.completed": _images_terminal,
                                 "image_edit.completed": _images_terminal})


def _transcript_terminal(event: Any) -> Reading:
    return Reading(usage=_usage.transcription_usage(field(event, "usage")),
                   unknown_reason="not_reported")


def transcription_events(hide_usage_chunk: bool = False) -> EventStream:
    """Streamed transcription: ``transcript.text.done`` carries the usage."""
    return EventStream(terminal={"transcript.text.done": _transcript_terminal})


# -- the record of one stream ---------------------------------------------------------------


class StreamRecord:
    """Turns the end of one stream (however it ends) into exactly one ledger record."""

    __slots__ = ("__weakref__", "finalizer", "handle", "in_next", "observer", "seen_items")

    def __init__(self, handle: paid_hooks.CallHandle, observer: Observer) -> None:
        self.handle = handle
        self.observer = observer
        self.in_next = False
        """True while the SDK stream is producing the next item (its own close is normal)."""
        self.seen_items = False
        self.finalizer: weakref.finalize[Any, Any] | None = None

    def _reading(self) -> Reading:
        try:
            return self.observer.reading()
        except Exception:
            log.debug("paid_hooks: could not read an OpenAI stream", exc_info=True)
            return Reading(usage=None, unknown_reason="unreadable_response")

    def _detach(self) -> None:
        if self.finalizer is not None:
            self.finalizer.detach()
            self.finalizer = None

    def ended(self) -> None:
        """The SDK stream was read to its end."""
        if self.handle.done:
            return
        self._detach()
        try:
            reading = self._reading()
            if reading.failed or reading.usage is not None or self.observer.completed:
                finish_with(self.handle, reading)
            else:
                self.handle.usage_unknown("stream_closed_early",
                                          response_model=reading.response_model,
                                          response_id=reading.response_id)
        except Exception:
            log.warning("paid_hooks: could not record an OpenAI stream", exc_info=True)

    def errored(self, exc: BaseException) -> None:
        """Reading the SDK stream raised ``exc`` (re-raised to the caller afterwards)."""
        if self.handle.done:
            return
        self._detach()
        try:
            reading = self._reading()
            if reading.usage is not None:
                finish_with(self.handle, reading)
            elif not self.seen_items:
                self.handle.fail(exc)
            else:
                self.handle.usage_unknown(f"stream_error:{type(exc).__qualname__}",
                                          response_model=reading.response_model,
                                          response_id=reading.response_id)
        except Exception:
            log.warning("paid_hooks: could not record an OpenAI stream", exc_info=True)

    def abandoned(self) -> None:
        """Closed or collected before the end: the usage if it already came, else unknown."""
        if self.handle.done:
            return
        self._detach()
        try:
            reading = self._reading()
            if reading.usage is not None:
                finish_with(self.handle, reading)
            else:
                self.handle.usage_unknown("stream_closed_early",
                                          response_model=reading.response_model,
                                          response_id=reading.response_id)
        except Exception:
            log.warning("paid_hooks: could not record an OpenAI stream", exc_info=True)

    def response_closed(self) -> None:
        """The HTTP response was closed; by the SDK itself at the end of a read, or early."""
        if not self.in_next:
            self.abandoned()


def _observe_sync(inner: Iterator[Any], record: StreamRecord) -> Iterator[Any]:
    observe = record.observer.observe
    finished = False
    try:
        while True:
            record.in_next = True
            try:
                item = next(inner)
            except StopIteration:
                finished = True
                record.ended()
                return
            except BaseException as exc:
                finished = True
                record.errored(exc)
                raise
            finally:
                record.in_next = False
            record.seen_items = True
            try:
                show = observe(item)
            except Exception:
                log.debug("paid_hooks: could not read an OpenAI stream item", exc_info=True)
                show = True
            if show:
                yield item
    finally:
        if not finished:
            record.abandoned()
            close = getattr(inner, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.debug("paid_hooks: closing an OpenAI stream failed", exc_info=True)


async def _observe_async(inner: AsyncIterator[Any], record: StreamRecord) -> AsyncIterator[Any]:
    observe = record.observer.observe
    finished = False
    try:
        while True:
            record.in_next = True
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                finished = True
                record.ended()
                return
            except BaseException as exc:
                finished = True
                record.errored(exc)
                raise
            finally:
                record.in_next = False
            record.seen_items = True
            try:
                show = observe(item)
            except Exception:
                log.debug("paid_hooks: could not read an OpenAI stream item", exc_info=True)
                show = True
            if show:
                yield item
    finally:
        if not finished:
            record.abandoned()
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("paid_hooks: closing an OpenAI stream failed", exc_info=True)


def _hook_response_close(response: Any, record: StreamRecord, asynchronous: bool) -> None:
    """Make closing the HTTP response (by anyone) end the record.

    The SDK's helper streams (``chat.completions.stream()``, ``responses.stream()``) close
    ``raw_stream.response`` directly rather than calling the stream's ``close()``, so the
    hook sits on the response object itself (an instance attribute; the class is untouched).
    """
    ref = weakref.ref(record)
    name = "aclose" if asynchronous else "close"
    original = getattr(response, name)

    def notify() -> None:
        target = ref()
        if target is not None:
            target.response_closed()

    if asynchronous:
        async def aclose() -> None:
            try:
                await original()
            finally:
                notify()

        setattr(response, name, aclose)
    else:
        def close() -> None:
            try:
                original()
            finally:
                notify()

        setattr(response, name, close)


class PaidStream(Stream):  # type: ignore[type-arg]
    """An ``openai.Stream`` whose items pass through a :class:`StreamRecord`.

    It adopts the SDK stream's attributes instead of running ``Stream.__init__`` (which
    would start a second decoder on the same HTTP response); everything else is inherited.
    """

    def __init__(self, sdk_stream: Stream[Any], record: StreamRecord) -> None:
        self.__dict__.update(sdk_stream.__dict__)
        inner = sdk_stream.__dict__.get("_iterator") or iter(sdk_stream)
        self._iterator = _observe_sync(inner, record)
        _hook_response_close(self.response, record, asynchronous=False)
        record.finalizer = weakref.finalize(self, record.abandoned)


class PaidAsyncStream(AsyncStream):  # type: ignore[type-arg]
    """An ``openai.AsyncStream`` whose items pass through a :class:`StreamRecord`."""

    def __init__(self, sdk_stream: AsyncStream[Any], record: StreamRecord) -> None:
        self.__dict__.update(sdk_stream.__dict__)
        inner = sdk_stream.__dict__.get("_iterator") or sdk_stream.__aiter__()
        self._iterator = _observe_async(inner, record)
        _hook_response_close(self.response, record, asynchronous=True)
        record.finalizer = weakref.finalize(self, record.abandoned)


def wrap_stream(stream: Any, handle: paid_hooks.CallHandle,
                observer: Observer) -> PaidStream | PaidAsyncStream:
    """The recorded twin of an SDK ``Stream`` / ``AsyncStream`` (raises TypeError otherwise)."""
    record = StreamRecord(handle, observer)
    if isinstance(stream, Stream):
        return PaidStream(stream, record)
    if isinstance(stream, AsyncStream):
        return PaidAsyncStream(stream, record)
    raise TypeError(f"not an OpenAI stream: {type(stream).__qualname__}")
