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
from paid_hooks_httpx._decode import IDENTITY, UnsupportedEncoding, is_identity, make_decoder
from paid_hooks_httpx._parse import make_reader
from paid_hooks_httpx._routes import Route, classify, request_details

__all__ = ["CAPTURED_BY", "BodyTap", "PendingCall", "begin", "drain_orphans", "orphaned",
           "suppressed"]

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


def suppressed() -> bool:
    """True while another layer records the call, or OpenTelemetry is suppressed."""
    if paid_hooks.call_in_flight() is not None:
        return True
    try:
        current = otel_context.get_current()
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
    """Receives the raw (content-encoded) body chunks of one response; records once."""

    __slots__ = ("_decoder", "_done", "_handle", "_identity", "_reader", "_reason", "_route",
                 "_status")

    def __init__(self, handle: paid_hooks.CallHandle, route: Route, status: int,
                 content_type: str | None, content_encoding: str | None) -> None:
        self._handle = handle
        self._route = route
        self._status = status
        self._done = False
        self._reason: str | None = None
        self._reader = make_reader(route.api, content_type)
        self._decoder: Any = IDENTITY
        self._identity = True
        if content_encoding:  # the usual body is not encoded: no decoder built for it
            try:
                self._decoder = make_decoder(content_encoding)
            except UnsupportedEncoding as exc:
                self._decoder = None
                self._reason = f"content_encoding_{exc.args[0] if exc.args else 'unknown'}"
            self._identity = is_identity(self._decoder)

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, chunk: bytes) -> None:
        """One raw chunk the caller is about to receive. Never raises."""
        if self._done or self._decoder is None:
            return
        try:
            if self._identity:
                if chunk:
                    self._reader.feed(chunk)
                return
            for piece in self._decoder.decode(chunk):
                self._reader.feed(piece)
        except Exception:
            log.debug("paid_hooks_httpx: could not decode a response chunk", exc_info=True)
            self._decoder = None
            self._reason = "undecodable_response"

    def end(self) -> None:
        """The body was read to its end: record now."""
        if self._done:
            return
        try:
            if self._decoder is not None and not self._identity:
                for piece in self._decoder.flush():
                    self._reader.feed(piece)
            self._reader.eof()
        except Exception:
            log.debug("paid_hooks_httpx: could not finish reading a response", exc_info=True)
            self._reason = self._reason or "undecodable_response"
        self._record()

    def close(self) -> None:
        """The response was closed (perhaps before its end). Records if nothing did yet."""
        if not self._done:
            self._record()

    def error(self, exc: BaseException) -> None:
        """Reading the body failed (connection lost, timeout)."""
        if not self._done:
            self._reason = self._reason or "stream_error"
            self._record(read_error=True)

    def _record(self, *, read_error: bool = False) -> None:
        self._done = True
        handle = self._handle
        try:
            result = self._reader.result
            model, rid = result.response_model, result.response_id
            if self._status >= 400:
                handle.fail(f"http_{self._status}", usage=result.usage if result.complete
                            else None, response_model=model, response_id=rid)
            elif result.complete:
                handle.finish(result.usage, response_model=model, response_id=rid,
                              service_tier=result.service_tier)
            elif self._reason is not None:
                handle.usage_unknown(self._reason, response_model=model, response_id=rid)
            elif read_error:
                handle.usage_unknown("stream_error", response_model=model, response_id=rid)
            elif result.error is not None:
                handle.usage_unknown(result.error, response_model=model, response_id=rid)
            elif result.ended:  # the provider's end marker arrived, without usage
                handle.usage_unknown("not_reported", response_model=model, response_id=rid)
            else:
                handle.usage_unknown("stream_closed_early", response_model=model,
                                     response_id=rid)
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
            return BodyTap(self.handle, self.route, status, headers.get("content-type"),
                           None if decoded else headers.get("content-encoding"))
        except Exception:
            log.warning("paid_hooks_httpx: could not read a response", exc_info=True)
            self.handle.usage_unknown("unreadable_response")
            return None

    def transport_error(self, exc: BaseException) -> None:
        """No response at all (connect error, timeout before headers): nothing billed."""
        self.handle.fail(exc)


def begin(request: Any, provider: str | None) -> PendingCall | None:
    """Start recording ``request`` if it is an AI call nobody else records. Never raises."""
    if _orphans:
        drain_orphans()
    try:
        url = request.url
        route = classify(request.method, url.host, url.path, provider)
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
            server_address=url.host or None,
        )
        if not handle.recording:
            return None
        return PendingCall(handle, route)
    except Exception:
        log.warning("paid_hooks_httpx: could not inspect a request", exc_info=True)
        return None
