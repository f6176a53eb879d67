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
import sys
import types
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
_DICT_CHUNK: Any = (ChatCompletionChunk if reads_from_dict(ChatCompletionChunk, *_CHUNK_FIELDS)
                    else None)
"""The SDK's chunk class when its chunks can be read from their ``__dict__`` (what
``getattr`` reads, for less); else None."""


class ChatChunks:
    """``chat.completion.chunk`` items.

    With ``hide_usage_chunk`` (set when the plugin, not the caller, asked for
    ``include_usage``) the extra final chunk that has ``choices == []`` and a ``usage`` is
    consumed here and not shown to the caller. Chunks with empty choices and no usage (e.g.
    Azure's content-filter chunk) are always shown.

    Each chunk's id, model and tier are compared with the previous chunk's as they came
    (``_seen_*``) and only taken (last non-empty one wins) when they differ.
    """

    __slots__ = ("_seen_id", "_seen_model", "_seen_tier", "completed", "hide_usage_chunk",
                 "model", "response_id", "service_tier", "usage")

    def __init__(self, hide_usage_chunk: bool) -> None:
        self.hide_usage_chunk = hide_usage_chunk
        self.completed = False
        self.usage: paid_hooks.Usage | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.service_tier: str | None = None
        self._seen_id: Any = None
        self._seen_model: Any = None
        self._seen_tier: Any = None

    def observe(self, item: Any) -> bool:
        # Runs once per chunk. The usual content chunk (same id / model / tier as the one
        # before, no usage, no finish_reason) costs five reads of its ``__dict__``, three
        # compares and a look at its one choice: no tuple built, nothing stored.
        if type(item) is _DICT_CHUNK:
            values = item.__dict__
            try:  # subscripts, not an itemgetter + unpack: about a third less per chunk
                raw_usage = values["usage"]
                choices = values["choices"]
                if (values["id"] != self._seen_id or values["model"] != self._seen_model
                        or values["service_tier"] != self._seen_tier):
                    self._take(values["id"], values["model"], values["service_tier"])
            except KeyError:  # a field missing from this chunk: read it as getattr would
                raw_usage, choices = self._read(item)
        else:
            raw_usage, choices = self._read(item)
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
        return raw_usage is None or not self.hide_usage_chunk or bool(choices)

    def _read(self, item: Any) -> tuple[Any, Any]:
        """``observe`` for any chunk (read field by field): takes the id / model / tier;
        returns the usage and the choices."""
        response_id, model, tier, raw_usage, choices = _CHUNK(item)
        if (response_id != self._seen_id or model != self._seen_model
                or tier != self._seen_tier):
            self._take(response_id, model, tier)
        return raw_usage, choices

    def _take(self, response_id: Any, model: Any, tier: Any) -> None:
        """The last non-empty id, model and tier win."""
        self._seen_id = response_id
        self._seen_model = model
        self._seen_tier = tier
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
    """Turns the end of one stream (however it ends) into exactly one ledger record.

    ``inner`` is the SDK's item generator. While it runs (``gi_running`` / ``ag_running``)
    a close of the HTTP response is the SDK's own (after the last item, or on an error) and
    the loop records the end itself; any other close is the caller's (or a helper's).
    Reading that flag when the response closes, instead of setting one around every item,
    keeps the per-item path free of bookkeeping.
    """

    __slots__ = ("handle", "inner", "observer")

    def __init__(self, handle: paid_hooks.CallHandle, observer: Observer, inner: Any) -> None:
        self.handle = handle
        self.observer = observer
        self.inner = inner

    def _reading(self) -> Reading:
        try:
            return self.observer.reading()
        except Exception:
            log.debug("paid_hooks: could not read an OpenAI stream", exc_info=True)
            return Reading(usage=None, unknown_reason="unreadable_response")

    def ended(self) -> None:
        """The SDK stream was read to its end."""
        if self.handle.done:
            return
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

    def errored(self, exc: BaseException, seen_items: bool) -> None:
        """Reading the SDK stream raised ``exc`` (re-raised to the caller afterwards);
        ``seen_items``: items had arrived before it."""
        if self.handle.done:
            return
        try:
            reading = self._reading()
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
        """Closed or collected before the end: the usage if it already came, else unknown."""
        if self.handle.done:
            return
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
        """The HTTP response was closed: by the SDK while producing an item (the loop
        records that end), else early, by the caller or a helper stream."""
        inner = self.inner
        if not (getattr(inner, "gi_running", False) or getattr(inner, "ag_running", False)):
            self.abandoned()


_NOTHING: Any = object()
"""``item`` until the first item arrives (tells ``errored`` whether any came)."""


# The two loops below hand each item on with as little as possible around it: ``for``
# (no call per item to fetch it), and no flag set per item. Exceptions are told apart by
# where they arise: the loop's own (an observer's BaseException, or one thrown in at the
# ``yield``, e.g. GeneratorExit from ``close()``) set ``own``; anything else came from the
# SDK's items.


def _observe_sync(inner: Iterator[Any], record: StreamRecord) -> Iterator[Any]:
    observe = record.observer.observe
    item = _NOTHING
    finished = own = False
    try:
        for item in inner:
            try:
                show = observe(item)
            except Exception:
                log.debug("paid_hooks: could not read an OpenAI stream item", exc_info=True)
                show = True
            except BaseException:
                own = True
                raise
            if show:
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
        record.ended()
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
    item = _NOTHING
    finished = own = False
    try:
        async for item in inner:
            try:
                show = observe(item)
            except Exception:
                log.debug("paid_hooks: could not read an OpenAI stream item", exc_info=True)
                show = True
            except BaseException:
                own = True
                raise
            if show:
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
        record.ended()
    finally:
        if not finished:
            record.abandoned()
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    log.debug("paid_hooks: closing an OpenAI stream failed", exc_info=True)


def _as_generator(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` as a generator (its ``gi_running`` is what ``response_closed`` reads)."""
    yield from items


async def _as_async_generator(items: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``items`` as an async generator (for ``ag_running``)."""
    async for item in items:
        yield item


class _CloseHook:
    """Set as the HTTP response's own ``close`` / ``aclose`` (an instance attribute; the
    class is untouched): the first close of the response, by anyone, ends the record.

    The SDK's helper streams (``chat.completions.stream()``, ``responses.stream()``) close
    ``raw_stream.response`` directly rather than calling the stream's ``close()``, hence a
    hook on the response itself. It holds the response weakly and calls the class's
    ``close`` (no bound method kept), and it takes itself off the response when called
    (later closes go straight to the original): the response keeps neither the hook nor
    the record alive, so they are freed with the stream, not by the garbage collector.
    """

    __slots__ = ("_before", "_record", "_response")
    _NAME = "close"

    def __init__(self, response: Any, record: StreamRecord) -> None:
        self._record = record
        before = getattr(response, self._NAME)
        if (type(before) is types.MethodType and before.__self__ is response
                and before.__func__ is getattr(type(response), self._NAME, None)):
            before = None  # the class's own method: nothing to keep
        self._before = before
        """Someone's own instance-level ``close`` already there (called instead), or None."""
        self._response = weakref.ref(response)

    def _unhook(self) -> Any:
        """Put back what was there before; returns what to call as the original close."""
        response = self._response()
        if response is None:
            return None
        # (getattr / delattr rather than ``response.__dict__``: building that dict for
        # this alone would cost an object more per stream.)
        before = self._before
        if getattr(response, self._NAME, None) is self:
            if before is None:
                delattr(response, self._NAME)
            else:
                setattr(response, self._NAME, before)
        return before if before is not None else getattr(response, self._NAME)


class _SyncCloseHook(_CloseHook):
    __slots__ = ()

    def __call__(self) -> None:
        try:
            close = self._unhook()
            if close is not None:
                close()
        finally:
            self._record.response_closed()


class _AsyncCloseHook(_CloseHook):
    __slots__ = ()
    _NAME = "aclose"

    async def __call__(self) -> None:
        try:
            aclose = self._unhook()
            if aclose is not None:
                await aclose()
        finally:
            self._record.response_closed()


class _OnCollect:
    """Kept in the recorded stream's ``__dict__`` (and nowhere else), it dies with the
    stream and then records it as closed early, unless it was recorded already.

    Needed for a stream dropped before its first item (the loop, never started, has no
    ``finally`` to run). It does what ``weakref.finalize`` did (except at interpreter
    exit) for far less: no registry entry, no weak reference, no bound method. Same idea
    as the Anthropic plugin's guard, copied here (a shared helper would belong in
    ``paid_hooks.plugin_kit``).
    """

    __slots__ = ("_record",)

    def __init__(self, record: StreamRecord) -> None:
        self._record = record

    def __del__(self) -> None:
        try:
            if not _is_finalizing():
                self._record.abandoned()
        except BaseException:  # never raise from a finalizer
            pass


_is_finalizing = sys.is_finalizing
_COLLECT_GUARD = "_paid_hooks_on_collect"


class PaidStream(Stream):  # type: ignore[type-arg]
    """An ``openai.Stream`` whose items pass through a :class:`StreamRecord`.

    It adopts the SDK stream's attributes instead of running ``Stream.__init__`` (which
    would start a second decoder on the same HTTP response); everything else is inherited.
    """

    def __init__(self, sdk_stream: Stream[Any], record: StreamRecord) -> None:
        state = self.__dict__
        state.update(sdk_stream.__dict__)
        state["_iterator"] = _observe_sync(record.inner, record)
        state[_COLLECT_GUARD] = _OnCollect(record)
        response = state["response"]
        response.close = _SyncCloseHook(response, record)


class PaidAsyncStream(AsyncStream):  # type: ignore[type-arg]
    """An ``openai.AsyncStream`` whose items pass through a :class:`StreamRecord`."""

    def __init__(self, sdk_stream: AsyncStream[Any], record: StreamRecord) -> None:
        state = self.__dict__
        state.update(sdk_stream.__dict__)
        state["_iterator"] = _observe_async(record.inner, record)
        state[_COLLECT_GUARD] = _OnCollect(record)
        response = state["response"]
        response.aclose = _AsyncCloseHook(response, record)


def wrap_stream(stream: Any, handle: paid_hooks.CallHandle,
                observer: Observer) -> PaidStream | PaidAsyncStream:
    """The recorded twin of an SDK ``Stream`` / ``AsyncStream`` (raises TypeError otherwise)."""
    if isinstance(stream, Stream):
        inner = stream.__dict__.get("_iterator") or iter(stream)
        if type(inner) is not types.GeneratorType:
            inner = _as_generator(inner)
        return PaidStream(stream, StreamRecord(handle, observer, inner))
    if isinstance(stream, AsyncStream):
        inner = stream.__dict__.get("_iterator") or stream.__aiter__()
        if type(inner) is not types.AsyncGeneratorType:
            inner = _as_async_generator(inner)
        return PaidAsyncStream(stream, StreamRecord(handle, observer, inner))
    raise TypeError(f"not an OpenAI stream: {type(stream).__qualname__}")
