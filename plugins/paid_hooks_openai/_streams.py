"""Recording streamed OpenAI calls: one record per stream and the stream types returned.

A recorded ``stream=True`` call returns a :class:`PaidStream` / :class:`PaidAsyncStream`:
a subclass of the SDK's own ``openai.Stream`` / ``openai.AsyncStream`` that adopts the
SDK stream's state (same ``response``, same decoder, same items) and only routes the
iteration through a loop that looks at each item on its way to the caller. Iteration,
``with``, ``close()``, ``.response`` and ``isinstance(s, openai.Stream)`` behave as on the
SDK's stream.

The call is recorded exactly once, when the stream ends:

* exhausted: the usage seen (``finish``); no usage but the provider said the response was
  complete (a ``finish_reason`` in the last chunk with choices, see :class:`ChatChunks`;
  a terminal event): ``usage_unknown("not_reported")``; no usage and no sign of
  completion: ``usage_unknown("stream_closed_early")``;
* closed by the caller (``close()``, leaving ``with``, or the SDK helpers closing the HTTP
  response), or garbage-collected, before the usage arrived:
  ``usage_unknown("stream_closed_early")``; if the usage already arrived, it is recorded;
* an exception while reading: the usage if already seen; ``fail`` (no charge) if nothing
  was received; else ``usage_unknown("stream_error:<ExceptionType>")``.

Per stream this costs the returned stream, one record (:class:`ChatChunks` for chat
completions, :class:`EventStream` for typed events), the recording loop (a generator,
which the stream's ``__iter__`` hands out itself: no generator layer is added), the
bound method set as the HTTP response's ``close``, and a :class:`_DropGuard` that lives
as long as the loop and records a stream dropped unfinished. The record is at once
what the items reported and the response's close hook.
"""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from openai import AsyncStream, Stream
from openai.types.chat import ChatCompletionChunk

import paid_hooks
from paid_hooks.plugin_kit import as_str, field, field_reader, reads_from_dict
from paid_hooks_openai import _usage
from paid_hooks_openai._readers import Reading, read_responses

__all__ = [
    "ChatChunks",
    "EventStream",
    "PaidAsyncStream",
    "PaidStream",
    "StreamRecord",
    "chat_stream_reading",
    "finish_with",
    "images_events",
    "responses_events",
    "transcription_events",
    "wrap_stream",
]

log = logging.getLogger("paid_hooks.openai")

_CLOSED_EARLY = "stream_closed_early"
_NOT_REPORTED = "not_reported"


def finish_with(handle: paid_hooks.CallHandle, reading: Reading) -> None:
    """Record ``reading`` on ``handle`` (exactly one of finish / fail / usage_unknown)."""
    if reading.failed:
        handle.fail(reading.failed, usage=reading.usage, response_model=reading.response_model,
                    response_id=reading.response_id)
    elif reading.usage is not None:
        handle.finish(reading.usage, response_model=reading.response_model,
                      response_id=reading.response_id, service_tier=reading.service_tier)
    else:
        handle.usage_unknown(reading.unknown_reason or _NOT_REPORTED,
                             response_model=reading.response_model,
                             response_id=reading.response_id)


# -- the record of one stream ---------------------------------------------------------------


class StreamRecord:
    """What one stream reported so far; turns its end (however it ends) into exactly one
    ledger record. Subclasses, one per kind of stream, read the items and define
    :meth:`ended`, :meth:`errored` and :meth:`abandoned`.

    An operation's stream factory makes the record (``factory(hide_usage_chunk)``);
    :func:`wrap_stream` then attaches the call's ``handle``, the SDK's item generator
    (``inner``) and the HTTP response, whose ``close`` / ``aclose`` becomes the record's
    :meth:`response_closed` / :meth:`aresponse_closed` (an instance attribute; the class
    is untouched).

    While ``inner`` runs (``gi_running`` / ``ag_running``) a close of the HTTP response is
    the SDK's own (after the last item, or on an error) and the loop records the end
    itself; any other close is the caller's, or a helper stream's
    (``chat.completions.stream()`` and ``responses.stream()`` close the response directly,
    not the stream): the call is recorded then (:meth:`abandoned`). Reading that flag when
    the response closes, instead of setting one around every item, keeps the per-item path
    free of bookkeeping. The hook takes itself off the response when called (later closes
    go straight to the original), which also ends the reference cycle response -> hook ->
    record -> response that exists while it is on.
    """

    __slots__ = ("_before", "_response", "handle", "inner")

    handle: paid_hooks.CallHandle
    inner: Any
    _response: Any
    _before: Any
    """Someone's own instance-level ``close`` found on the response (restored and called
    instead of the class's), or None."""

    def ended(self) -> None:
        """The SDK stream was read to its end."""
        raise NotImplementedError

    def errored(self, exc: BaseException, seen_items: bool) -> None:
        """Reading the SDK stream raised ``exc`` (re-raised to the caller afterwards);
        ``seen_items``: items had arrived before it."""
        raise NotImplementedError

    def abandoned(self) -> None:
        """Closed or collected before the end: the usage if it already came, else unknown."""
        raise NotImplementedError

    # The two hooks below are written out in full (no shared helper): one call less at
    # the end of every stream, where the SDK closes the response.

    def response_closed(self) -> None:
        """The HTTP response's ``close`` while the stream is recorded (see the class)."""
        try:
            response = self._response
            if getattr(getattr(response, "close", None), "__self__", None) is self:
                if self._before is None:
                    del response.close
                else:
                    response.close = self._before
            response.close()
        finally:
            if not getattr(self.inner, "gi_running", False):
                self.abandoned()

    async def aresponse_closed(self) -> None:
        """The HTTP response's ``aclose`` while the stream is recorded (see the class)."""
        try:
            response = self._response
            if getattr(getattr(response, "aclose", None), "__self__", None) is self:
                if self._before is None:
                    del response.aclose
                else:
                    response.aclose = self._before
            await response.aclose()
        finally:
            if not getattr(self.inner, "ag_running", False):
                self.abandoned()


_CHUNK_FIELDS = ("id", "usage", "choices")
_DICT_CHUNK: Any = (ChatCompletionChunk if reads_from_dict(ChatCompletionChunk, *_CHUNK_FIELDS)
                    else None)
"""The SDK's chunk class when its chunks' fields can be read from their ``__dict__`` (what
``getattr`` reads); else None. A pydantic model defines ``__getattr__``, so the
interpreter cannot specialise an attribute read on it: each one goes through the class's
hook and a lookup of the name along its long MRO (~150 CPU instructions); the
``__dict__`` read once and three subscripts cost a third of that."""
_CHUNK = field_reader(*_CHUNK_FIELDS)
_NAMES = field_reader("id", "model", "service_tier")

_EXHAUSTED = ""
"""The reason :meth:`ChatChunks.settle` gets when the stream was read to its end: the
pipeline worker makes it ``not_reported`` or ``stream_closed_early`` (see
:func:`chat_stream_reading`)."""


class ChatChunks(StreamRecord):
    """The record of a ``chat.completion.chunk`` stream.

    With ``hide_usage_chunk`` (set when the plugin, not the caller, asked for
    ``include_usage``) the extra final chunk that has ``choices == []`` and a ``usage`` is
    consumed and not shown to the caller. Chunks with empty choices and no usage (e.g.
    Azure's content-filter chunks) are always shown.

    The loop (:func:`_chat_sync`) reads three fields of a chunk and keeps references,
    nothing more: every ``usage`` as it came (``usages``), the last chunk that had a usage
    and an id (``usage_chunk``), and the last chunk that had both choices and an id
    (``last``). Chunks without an id (Azure's content-filter chunks, which may come after
    the finish chunk) are never kept. Reading them is left to the pipeline worker
    (:func:`chat_stream_reading`, through ``CallHandle.finish_later``):

    * the usage: the last readable one;
    * the id, model and service tier: those of ``last``, else of ``usage_chunk`` (a model
      or tier that is not a non-empty string there is recorded as None);
    * a stream read to its end without a usage was complete (``not_reported``) if a
      choice of ``last`` has a ``finish_reason``, else it was cut
      (``stream_closed_early``): with n > 1 choices each finishes in a chunk of its own,
      and the last one to finish ends the stream.

    The chunks are the SDK's own objects, handed to the caller too: they are read after
    the stream ended, as they were then (an application that changes them afterwards
    changes what is recorded). A chunk of another type (or missing a field) is read field
    by field (:meth:`take`).
    """

    __slots__ = ("hide_usage_chunk", "last", "usage_chunk", "usages")

    def __init__(self, hide_usage_chunk: bool) -> None:
        self.hide_usage_chunk = hide_usage_chunk
        self.usages: list[Any] = []
        self.usage_chunk: Any = None
        self.last: Any = None

    def take(self, chunk: Any) -> bool:
        """The loop's reading of a chunk its attribute reads failed on, field by field
        (also dicts); returns whether to hide it (the injected usage chunk). Never raises."""
        try:
            response_id, raw_usage, choices = _CHUNK(chunk)
            if raw_usage is not None:
                self.usages.append(raw_usage)
                if response_id:
                    self.usage_chunk = chunk
                if self.hide_usage_chunk and not choices:
                    return True
            if choices and response_id:
                self.last = chunk
        except Exception:
            log.debug("paid_hooks: could not read an OpenAI stream item", exc_info=True)
        return False

    def settle(self, reason: str) -> None:
        """Record the call now, reading it later (:func:`chat_stream_reading`, on the
        pipeline worker): the usage if one arrived, else ``usage_unknown(reason)``
        (:data:`_EXHAUSTED`: decided there). A second record is ignored by the handle."""
        self.handle.finish_later(chat_stream_reading, (tuple(self.usages), self.last,
                                                       self.usage_chunk, reason))

    def ended(self) -> None:
        self.settle(_EXHAUSTED)

    def errored(self, exc: BaseException, seen_items: bool) -> None:
        handle = self.handle
        if handle.done:
            return
        if not self.usages and not seen_items:
            handle.fail(exc)
        else:
            self.settle(f"stream_error:{type(exc).__qualname__}")

    def abandoned(self) -> None:
        self.settle(_CLOSED_EARLY)


def _finished(chunk: Any) -> bool:
    """Whether a choice of ``chunk`` has a ``finish_reason``."""
    choices = field(chunk, "choices")
    return isinstance(choices, list) and any(field(c, "finish_reason") for c in choices)


def chat_stream_reading(source: tuple[tuple[Any, ...], Any, Any, str]
                        ) -> paid_hooks.CallReading:
    """What a chat stream reported (run on the pipeline worker, see :class:`ChatChunks`):
    ``source`` is (every usage seen, the last chunk with choices and an id, the last
    chunk with a usage and an id, the reason to record when no usage is readable, or
    :data:`_EXHAUSTED`)."""
    usages, last, usage_chunk, reason = source
    usage = None
    for raw_usage in reversed(usages):  # the last readable one
        try:
            usage = _usage.chat_usage(raw_usage)
        except Exception:
            log.debug("paid_hooks: could not read an OpenAI stream usage", exc_info=True)
        if usage is not None:
            break
    response_id = model = tier = None
    named = last if last is not None else usage_chunk
    try:
        if named is not None:
            response_id, model, tier = _NAMES(named)
        if reason == _EXHAUSTED:
            reason = _NOT_REPORTED if last is not None and _finished(last) else _CLOSED_EARLY
    except Exception:
        log.debug("paid_hooks: could not read an OpenAI stream chunk", exc_info=True)
        reason = reason or _CLOSED_EARLY
    # (the handle keeps non-empty strings only: anything else is recorded as None)
    return paid_hooks.CallReading(usage, model, response_id,
                                  tier if usage is not None else None, reason)


class EventStream(StreamRecord):
    """The record of typed server events (``item.type``) where terminal events carry the
    usage.

    ``terminal`` maps an event type to the reader of its final :class:`Reading`; ``start``
    maps event types that name the response early (id, model) to a reader, so a stream cut
    short is still recorded under its response id.
    """

    __slots__ = ("completed", "last", "start", "terminal")

    completed: bool
    """A terminal event arrived (the usage may still be missing)."""

    def __init__(self, terminal: dict[str, Callable[[Any], Reading]],
                 start: dict[str, Callable[[Any], Reading]] | None = None) -> None:
        self.terminal = terminal
        self.start = start or {}
        self.completed = False
        self.last = Reading(usage=None, unknown_reason=_NOT_REPORTED)

    def observe(self, item: Any) -> None:
        """Look at one event."""
        kind = field(item, "type")
        reader = self.terminal.get(kind) if isinstance(kind, str) else None
        if reader is not None:
            self.completed = True
            self.last = reader(item)
        elif isinstance(kind, str) and kind in self.start and not self.completed:
            self.last = self.start[kind](item)

    def reading(self) -> Reading:
        return self.last

    def ended(self) -> None:
        if self.handle.done:
            return
        try:
            reading = self.last
            if reading.failed or reading.usage is not None or self.completed:
                finish_with(self.handle, reading)
            else:
                self.handle.usage_unknown(_CLOSED_EARLY, response_model=reading.response_model,
                                          response_id=reading.response_id)
        except Exception:
            log.warning("paid_hooks: could not record an OpenAI stream", exc_info=True)

    def errored(self, exc: BaseException, seen_items: bool) -> None:
        if self.handle.done:
            return
        try:
            reading = self.last
            if reading.usage is not None:
                finish_with(self.handle, reading)
            elif not seen_items:
                self.handle.fail(exc)
            else:
                self.handle.usage_unknown(f"stream_error:{type(exc).__qualname__}",
                                          response_model=reading.response_model,
                                          response_id=reading.response_id)
        except Exception:
            log.warning("paid_hooks: could not record an OpenAI stream", exc_info=True)

    def abandoned(self) -> None:
        if self.handle.done:
            return
        try:
            reading = self.last
            if reading.usage is not None:
                finish_with(self.handle, reading)
            else:
                self.handle.usage_unknown(_CLOSED_EARLY, response_model=reading.response_model,
                                          response_id=reading.response_id)
        except Exception:
            log.warning("paid_hooks: could not record an OpenAI stream", exc_info=True)


def _responses_terminal(event: Any) -> Reading:
    return read_responses(field(event, "response"), {})


def _responses_start(event: Any) -> Reading:
    response = field(event, "response")
    return Reading(usage=None, response_model=as_str(field(response, "model")),
                   response_id=as_str(field(response, "id")), unknown_reason=_NOT_REPORTED)


def _responses_error(event: Any) -> Reading:
    return Reading(usage=None, unknown_reason=_NOT_REPORTED, failed="response.error")


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
                   unknown_reason=_NOT_REPORTED)


def images_events(hide_usage_chunk: bool = False) -> EventStream:
    """Image generation / edit events: the ``*.completed`` event carries the usage."""
    return EventStream(terminal={"image_generation.completed": _images_terminal,
                                 "image_edit.completed": _images_terminal})


def _transcript_terminal(event: Any) -> Reading:
    return Reading(usage=_usage.transcription_usage(field(event, "usage")),
                   unknown_reason=_NOT_REPORTED)


def transcription_events(hide_usage_chunk: bool = False) -> EventStream:
    """Streamed transcription: ``transcript.text.done`` carries the usage."""
    return EventStream(terminal={"transcript.text.done": _transcript_terminal})


# -- the loops ------------------------------------------------------------------------------

_NOTHING: Any = object()
"""``item`` until the first item arrives (tells ``errored`` whether any came)."""


# The loops below hand each item on with as little as possible around it: ``for`` (no
# call per item to fetch it), and no flag set per item. Exceptions are told apart by where
# they arise: the loop's own (a BaseException while reading an item, or one thrown in at
# the ``yield``, e.g. GeneratorExit from ``close()``) set ``own``; anything else came from
# the SDK's items. The chat loops read each chunk inline (see ChatChunks): a content chunk
# costs three reads of its ``__dict__`` and a reference kept, no call; what those
# references hold is read once, on the pipeline worker. (Scanning each chunk's choices for
# a finish reason as well took three times the loop's bytecode per chunk.)


def _chat_sync(inner: Generator[Any, None, None], record: ChatChunks,
               guard: _DropGuard) -> Iterator[Any]:
    hide = record.hide_usage_chunk
    item = _NOTHING
    finished = own = False
    try:
        for item in inner:
            try:
                if type(item) is _DICT_CHUNK:
                    values = item.__dict__
                    raw_usage = values["usage"]
                    if raw_usage is not None:
                        record.usages.append(raw_usage)
                        if values["id"]:
                            record.usage_chunk = item
                        if hide and not values["choices"]:
                            continue  # the usage chunk the caller did not ask for
                    if values["choices"] and values["id"]:
                        record.last = item
                elif record.take(item):  # not a chunk as the SDK makes them
                    continue
            except Exception:  # a field missing from the chunk's __dict__
                if record.take(item):
                    continue
            except BaseException:
                own = True
                raise
            try:
                yield item
            except BaseException:  # closed, or thrown in, at the yield
                own = True
                raise
    except BaseException as exc:
        if not own:
            finished = True
            record.errored(exc, item is not _NOTHING)
        raise
    else:
        finished = True
        record.settle(_EXHAUSTED)
    finally:
        if not finished:
            record.abandoned()
            try:
                inner.close()
            except Exception:
                log.debug("paid_hooks: closing an OpenAI stream failed", exc_info=True)


async def _chat_async(inner: AsyncGenerator[Any, None], record: ChatChunks,
                      guard: _DropGuard) -> AsyncIterator[Any]:
    hide = record.hide_usage_chunk
    item = _NOTHING
    finished = own = False
    try:
        async for item in inner:
            try:
                if type(item) is _DICT_CHUNK:
                    values = item.__dict__
                    raw_usage = values["usage"]
                    if raw_usage is not None:
                        record.usages.append(raw_usage)
                        if values["id"]:
                            record.usage_chunk = item
                        if hide and not values["choices"]:
                            continue
                    if values["choices"] and values["id"]:
                        record.last = item
                elif record.take(item):
                    continue
            except Exception:
                if record.take(item):
                    continue
            except BaseException:
                own = True
                raise
            try:
                yield item
            except BaseException:
                own = True
                raise
    except BaseException as exc:
        if not own:
            finished = True
            record.errored(exc, item is not _NOTHING)
        raise
    else:
        finished = True
        record.settle(_EXHAUSTED)
    finally:
        if not finished:
            record.abandoned()
            try:
                await inner.aclose()
            except Exception:
                log.debug("paid_hooks: closing an OpenAI stream failed", exc_info=True)


def _events_sync(inner: Generator[Any, None, None], record: EventStream,
                 guard: _DropGuard) -> Iterator[Any]:
    observe = record.observe
    item = _NOTHING
    finished = own = False
    try:
        for item in inner:
            try:
                observe(item)
            except Exception:
                log.debug("paid_hooks: could not read an OpenAI stream item", exc_info=True)
            except BaseException:
                own = True
                raise
            try:
                yield item
            except BaseException:
                own = True
                raise
    except BaseException as exc:
        if not own:
            finished = True
            record.errored(exc, item is not _NOTHING)
        raise
    else:
        finished = True
        record.ended()
    finally:
        if not finished:
            record.abandoned()
            try:
                inner.close()
            except Exception:
                log.debug("paid_hooks: closing an OpenAI stream failed", exc_info=True)


async def _events_async(inner: AsyncGenerator[Any, None], record: EventStream,
                        guard: _DropGuard) -> AsyncIterator[Any]:
    observe = record.observe
    item = _NOTHING
    finished = own = False
    try:
        async for item in inner:
            try:
                observe(item)
            except Exception:
                log.debug("paid_hooks: could not read an OpenAI stream item", exc_info=True)
            except BaseException:
                own = True
                raise
            try:
                yield item
            except BaseException:
                own = True
                raise
    except BaseException as exc:
        if not own:
            finished = True
            record.errored(exc, item is not _NOTHING)
        raise
    else:
        finished = True
        record.ended()
    finally:
        if not finished:
            record.abandoned()
            try:
                await inner.aclose()
            except Exception:
                log.debug("paid_hooks: closing an OpenAI stream failed", exc_info=True)


def _as_generator(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` as a generator (its ``gi_running`` is what ``response_closed`` reads)."""
    yield from items


async def _as_async_generator(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``items`` as an async generator (for ``ag_running``)."""
    async for item in items:
        yield item


# -- the stream types -----------------------------------------------------------------------

_is_finalizing = sys.is_finalizing


class _DropGuard:
    """Held by the recording loop's frame (an argument of the generator, so from its
    creation, started or not) and by nothing else: it dies with the loop, that is when
    neither the stream nor an iterator taken from it is referenced any more, and then
    records the stream as closed early unless it was recorded already. A loop that
    started has its own ``finally`` for that; this covers the loop never started (a
    stream dropped before its first item), which runs no code when it dies. Never raises;
    not at interpreter exit."""

    __slots__ = ("record",)

    record: StreamRecord

    def __del__(self) -> None:
        try:
            record = self.record
            if not record.handle.done and not _is_finalizing():
                record.abandoned()
        except BaseException:  # never raise from a finalizer
            pass


class PaidStream(Stream):  # type: ignore[type-arg]
    """An ``openai.Stream`` whose items pass through a recording loop.

    It adopts the SDK stream's attributes instead of running ``Stream.__init__`` (which
    would start a second decoder on the same HTTP response); everything else is inherited
    but ``__iter__``, which hands out the recording loop itself instead of a generator
    around it (the SDK's ``__iter__`` is ``for item in self._iterator: yield item``). So a
    recorded stream has as many generators between the caller and the SDK's items as a
    bare one: every generator layer costs on each item, as exceptions raised and handled
    in the SDK's per-chunk code walk the chain of running generators. Iterating again,
    or breaking out and going on, behaves as on the SDK's stream (one shared item
    generator). The caller may hold only that iterator (``for chunk in create(...)``
    drops the stream at once): what records a dropped stream lives with the loop
    (:class:`_DropGuard`), not with the stream.
    """

    def __iter__(self) -> Iterator[Any]:
        iterator: Iterator[Any] = self._iterator
        return iterator


class PaidAsyncStream(AsyncStream):  # type: ignore[type-arg]
    """An ``openai.AsyncStream`` whose items pass through a recording loop (``__aiter__``
    hands out the loop itself, as :class:`PaidStream`'s ``__iter__`` does)."""

    def __aiter__(self) -> AsyncIterator[Any]:
        iterator: AsyncIterator[Any] = self._iterator
        return iterator


_new = object.__new__
_MethodType = types.MethodType


def wrap_stream(stream: Any, handle: paid_hooks.CallHandle,
                record: StreamRecord) -> PaidStream | PaidAsyncStream:
    """The recorded twin of an SDK ``Stream`` / ``AsyncStream`` (raises TypeError otherwise),
    recording ``handle`` through ``record`` (fresh from an operation's stream factory).

    A twin, not the SDK's object made recorded in place: the SDK's stream and its item
    generator reference each other (a cycle only the garbage collector frees), and the
    recording loop must not join that cycle, or a stream dropped before its first item
    would be recorded at the next collection instead of at once."""
    if isinstance(stream, Stream):
        inner = stream.__dict__.get("_iterator") or iter(stream)
        if type(inner) is not types.GeneratorType:
            inner = _as_generator(inner)
        loop: Any = _chat_sync if type(record) is ChatChunks else _events_sync
        wrapped: PaidStream | PaidAsyncStream = _new(PaidStream)
        name = "close"
        hook: Any = record.response_closed
    elif isinstance(stream, AsyncStream):
        inner = stream.__dict__.get("_iterator") or stream.__aiter__()
        if type(inner) is not types.AsyncGeneratorType:
            inner = _as_async_generator(inner)
        loop = _chat_async if type(record) is ChatChunks else _events_async
        wrapped = _new(PaidAsyncStream)
        name = "aclose"
        hook = record.aresponse_closed
    else:
        raise TypeError(f"not an OpenAI stream: {type(stream).__qualname__}")
    record.handle = handle
    record.inner = inner
    guard: _DropGuard = _new(_DropGuard)  # (no __init__ to call: a third of the cost)
    guard.record = record
    state = wrapped.__dict__
    state.update(stream.__dict__)
    state["_iterator"] = loop(inner, record, guard)
    response = state["response"]
    before = getattr(response, name)
    if (type(before) is _MethodType and before.__self__ is response
            and before.__func__ is getattr(type(response), name, None)):
        before = None  # the class's own method: nothing to keep
    record._before = before
    record._response = response
    setattr(response, name, hook)
    return wrapped
