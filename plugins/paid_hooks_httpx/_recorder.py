"""One AI call seen at the HTTP layer: from the request to exactly one ledger record.

:func:`begin` runs when the request is sent (in the caller's thread or task, so latency
and trace context are right) and returns a :class:`PendingCall`, or ``None`` when the
request is not an AI call or another layer already records it. When the response
headers arrive, :meth:`PendingCall.observe` returns a :class:`BodyTap` that the stream
tee feeds with every raw chunk the caller reads; it records when the body ends
(exhaustion), when it is closed, or when reading it fails:

* a final usage seen                      -> ``finish(usage, ...)`` (priced);
* the provider's end marker came, no usage -> ``usage_unknown("not_reported")``;
* closed before the end                   -> ``usage_unknown("stream_closed_early")``;
* a read error mid-body                   -> ``usage_unknown("stream_error")``;
* HTTP status >= 400                      -> ``fail("http_<status>", usage=<if reported>)``;
* a transport error (no response at all)  -> ``fail(exc)`` (no charge);
* neither read to the end nor closed, then garbage-collected (httpx's ``iter_raw`` does not
  close a response the caller stops iterating; google-genai's sync stream relies on that)
  -> ``usage_unknown("stream_closed_early")``, recorded at the next AI request
  (:func:`orphaned`: a finaliser must not take locks, so it only queues the tap).

No method here raises: every failure is logged and degrades to ``usage_unknown``.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from opentelemetry import context as otel_context

import paid_hooks
from paid_hooks.plugin_kit import current_otel_context
from paid_hooks_httpx._decode import UnsupportedEncoding, is_identity, make_decoder
from paid_hooks_httpx._parse import (
    WHOLE_LIMIT,
    JsonReader,
    Result,
    SseReader,
    make_reader,
    read_body,
)
from paid_hooks_httpx._routes import Route, classify, request_details

__all__ = ["CAPTURED_BY", "BodyTap", "PendingCall", "begin", "body_reading", "drain_orphans",
           "orphaned", "record", "suppressed"]

log = logging.getLogger("paid_hooks_httpx")

CAPTURED_BY = "httpx"
_SUPPRESS_KEYS = tuple(
    key for key in (getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None),
                    getattr(otel_context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", None))
    if key is not None
)
"""OpenTelemetry's suppression keys. ``create_key`` appends a UUID to the name, so the
constants themselves must be used (``get_value("suppress_instrumentation")`` never
matches)."""


_otel_current = current_otel_context


def suppressed() -> bool:
    """True while another layer records the call, or OpenTelemetry is suppressed."""
    if paid_hooks.call_in_flight() is not None:
        return True
    try:
        current = _otel_current()
        for key in _SUPPRESS_KEYS:  # noqa: SIM110 (a generator costs more than the loop)
            if current.get(key):
                return True
        return False
    except Exception:
        return False


_orphans: collections.deque[BodyTap] = collections.deque()


def orphaned(tap: BodyTap) -> None:
    """A tee was garbage-collected before its body ended or was closed (lock-free)."""
    if not tap.done:
        _orphans.append(tap)


def drain_orphans() -> None:
    """Record the orphaned taps as closed early (outside any finaliser). Never raises."""
    while _orphans:
        try:
            tap = _orphans.popleft()
        except IndexError:
            return
        tap.close()


class BodyTap:
    """Receives the raw (content-encoded) body chunks of one response; records once.

    The decoded body is kept whole while it is at most ``WHOLE_LIMIT`` bytes and read in
    one go once the call ends, on the pipeline worker (:func:`body_reading`, through
    ``CallHandle.finish_later``): a chunk costs a list append, wherever the network cut
    it, and the reading costs the caller's thread nothing. A larger body is handed to an
    incremental reader, which keeps only what it needs, from then on.
    """

    __slots__ = ("_api", "_content_type", "_decoder", "_done", "_handle", "_parts", "_reader",
                 "_reason", "_size", "_status")

    def __init__(self, handle: paid_hooks.CallHandle, api: str, status: int,
                 content_type: str | None, content_encoding: str | None) -> None:
        self._handle = handle
        self._api = api
        self._status = status
        self._content_type = content_type
        self._done = False
        self._reason: str | None = None
        """Why the body cannot be read (then no more of it is): an undecodable encoding."""
        self._parts: list[bytes] = []
        self._size = 0
        self._reader: JsonReader | SseReader | None = None
        self._decoder: Any = None  # None: the body is not encoded (the usual)
        if content_encoding:
            try:
                decoder = make_decoder(content_encoding)
                self._decoder = None if is_identity(decoder) else decoder
            except UnsupportedEncoding as exc:
                self._reason = f"content_encoding_{exc.args[0] if exc.args else 'unknown'}"

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, chunk: bytes) -> None:
        """One raw chunk the caller is about to receive. Never raises."""
        if self._done or self._reason is not None:
            return
        try:
            if self._decoder is None:
                self._keep(chunk)
            else:
                for piece in self._decoder.decode(chunk):
                    self._keep(piece)
        except Exception:
            log.debug("paid_hooks_httpx: could not decode a response chunk", exc_info=True)
            self._reason = "undecodable_response"

    def _keep(self, piece: bytes) -> None:
        """Keep a decoded piece; past ``WHOLE_LIMIT`` hand the body to a reader."""
        reader = self._reader
        if reader is None:
            self._parts.append(piece)
            self._size += len(piece)
            if self._size <= WHOLE_LIMIT:
                return
            reader = self._reader = make_reader(self._api, self._content_type)
            piece = b"".join(self._parts)
            self._parts = []
        reader.feed(piece)

    def end(self) -> None:
        """The body was read to its end: record now."""
        if self._done:
            return
        if self._decoder is not None and self._reason is None:
            try:
                for piece in self._decoder.flush():
                    self._keep(piece)
            except Exception:
                log.debug("paid_hooks_httpx: could not finish reading a response",
                          exc_info=True)
                self._reason = "undecodable_response"
        self._record(eof=True)

    def close(self) -> None:
        """The response was closed (perhaps before its end). Records if nothing did yet."""
        if not self._done:
            self._record()

    def error(self, exc: BaseException) -> None:
        """Reading the body failed (connection lost, timeout)."""
        if not self._done:
            self._reason = self._reason or "stream_error"
            self._record(read_error=True)

    def _result(self, eof: bool) -> Result:
        """What the body read so far tells (``eof``: it was read to its end)."""
        reader = self._reader
        if reader is None:
            parts, self._parts = self._parts, []
            return read_body(self._api, self._content_type, b"".join(parts), eof=eof)
        if eof:
            reader.eof()
        return reader.result

    def _record(self, *, eof: bool = False, read_error: bool = False) -> None:
        self._done = True
        if self._reader is None and self._reason is None and self._status < 400:
            # The usual: a whole body, read on the pipeline worker (body_reading).
            parts, self._parts = self._parts, []
            self._handle.finish_later(body_reading, (self._api, self._content_type, parts, eof))
            return
        try:
            result = self._result(eof)
        except Exception:
            log.warning("paid_hooks_httpx: could not read a response", exc_info=True)
            result = Result(error="unreadable_response")
        record(self._handle, self._status, result, self._reason, read_error=read_error)


def body_reading(source: tuple[str, str | None, bytes | list[bytes], bool]
                 ) -> paid_hooks.CallReading:
    """What a successful response's whole body tells (run on the pipeline worker, through
    ``CallHandle.finish_later``): ``source`` is (API, content type, the decoded body or
    its pieces, whether it was read to its end). The same outcome as :func:`record` gives
    for a status below 400 and a readable body."""
    api, content_type, body, eof = source
    if type(body) is list:
        body = b"".join(body)
    result = read_body(api, content_type, body, eof=eof)  # type: ignore[arg-type]
    model, rid = result.response_model, result.response_id
    if result.complete:
        return paid_hooks.CallReading(result.usage, model, rid, result.service_tier)
    if result.error is not None:
        reason = result.error
    elif result.ended:  # the provider's end marker arrived, without usage
        reason = "not_reported"
    else:
        reason = "stream_closed_early"
    return paid_hooks.CallReading(None, model, rid, None, reason)


def record(handle: paid_hooks.CallHandle, status: int, result: Result,
           reason: str | None = None, *, read_error: bool = False) -> None:
    """Record the call from what its body told (see the module docstring). ``reason``:
    why the body could not be read; ``read_error``: reading it failed. Never raises."""
    try:
        model, rid = result.response_model, result.response_id
        if status >= 400:
            handle.fail(f"http_{status}", usage=result.usage if result.complete
                        else None, response_model=model, response_id=rid)
        elif result.complete:
            handle.finish(result.usage, response_model=model, response_id=rid,
                          service_tier=result.service_tier)
        elif reason is not None:
            handle.usage_unknown(reason, response_model=model, response_id=rid)
        elif read_error:
            handle.usage_unknown("stream_error", response_model=model, response_id=rid)
        elif result.error is not None:
            handle.usage_unknown(result.error, response_model=model, response_id=rid)
        elif result.ended:  # the provider's end marker arrived, without usage
            handle.usage_unknown("not_reported", response_model=model, response_id=rid)
        else:
            handle.usage_unknown("stream_closed_early", response_model=model, response_id=rid)
    except Exception:
        log.warning("paid_hooks_httpx: could not record an AI call", exc_info=True)
        handle.usage_unknown("unreadable_response")


class PendingCall:
    """An AI request that was sent and whose response has not arrived yet."""

    __slots__ = ("handle", "route")

    def __init__(self, handle: paid_hooks.CallHandle, route: Route) -> None:
        self.handle = handle
        self.route = route

    def observe(self, status: int, headers: Any, *, decoded: bool = False) -> BodyTap | None:
        """The response headers arrived: the tap for its body, or ``None`` (a redirect).

        ``decoded``: the body will be fed already content-decoded.
        """
        try:
            if 300 <= status < 400 and "location" in headers:
                return None  # the redirected request is recorded on its own
            return BodyTap(self.handle, self.route.api, status, headers.get("content-type"),
                           None if decoded else headers.get("content-encoding"))
        except Exception:
            log.warning("paid_hooks_httpx: could not read a response", exc_info=True)
            self.handle.usage_unknown("unreadable_response")
            return None

    def record_body(self, status: int, headers: Any, body: bytes | None) -> None:
        """The whole body, already decoded, is at hand (``None``: it is gone, read by
        someone else): record now, with no tap (the body read on the pipeline worker,
        unless the status is an error). Never raises."""
        try:
            if 300 <= status < 400 and "location" in headers:
                return  # the redirected request is recorded on its own
            if body is not None and status < 400:
                self.handle.finish_later(body_reading, (self.route.api,
                                                        headers.get("content-type"), body, True))
                return
            result = Result() if body is None else read_body(
                self.route.api, headers.get("content-type"), body, eof=True)
        except Exception:
            log.warning("paid_hooks_httpx: could not read a response", exc_info=True)
            self.handle.usage_unknown("unreadable_response")
            return
        record(self.handle, status, result)

    def transport_error(self, exc: BaseException) -> None:
        """No response at all (connect error, timeout before headers): nothing billed."""
        self.handle.fail(exc)


def begin(request: Any, provider: str | None) -> PendingCall | None:
    """Start recording ``request`` if it is an AI call nobody else records. Never raises."""
    if _orphans:
        drain_orphans()
    try:
        url = request.url
        host = url.host
        route = classify(request.method, host, url.path, provider)
        if route is None or suppressed():
            return None
        try:
            body: bytes | None = request.content
        except Exception:  # a streaming request body that was not read
            body = None
        model, streaming = request_details(route, body)
        handle = paid_hooks.start_call(
            provider=route.provider,
            operation=route.operation,
            request_model=model,
            captured_by=CAPTURED_BY,
            streaming=streaming,
            server_address=host or None,
        )
        if not handle.recording:
            return None
        return PendingCall(handle, route)
    except Exception:
        log.warning("paid_hooks_httpx: could not inspect a request", exc_info=True)
        return None
