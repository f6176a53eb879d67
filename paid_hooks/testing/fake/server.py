"""A small local AI provider server speaking the providers' real wire formats.

It listens on 127.0.0.1 on a random port, in a background thread, and answers the real
SDKs (pointed at it with ``base_url``) the way the real APIs do: JSON bodies and
server-sent-event streams byte-for-byte in their shape. Tests script the replies
(:class:`FakeReply`: text, usage, model, an error status, a stream cut short) and read
back every exchange (:attr:`FakeProviderServer.exchanges`).

Usage in a :class:`FakeReply` is provider-neutral and in the canonical semantics (input
INCLUDES cache reads and writes, output INCLUDES reasoning); each provider's handler
renders it in that provider's native form (Anthropic's exclusive input, Gemini's
separate thoughts, ...), so tests also check every plugin's normalisation.

Provider formats are registered as routes by the modules beside this one.
"""

from __future__ import annotations

import collections
import gzip
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "Exchange",
    "FakeProviderServer",
    "FakeReply",
    "FakeRequest",
    "FakeResponse",
    "FakeUsage",
    "estimate_tokens",
]


@dataclass(frozen=True)
class FakeUsage:
    """Provider-neutral usage, canonical semantics (subsets are included in the totals)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    """Cache writes in total; Anthropic renders them as 5-minute writes unless split."""
    cache_write_1h_tokens: int = 0
    """The part of ``cache_write_tokens`` written with the 1-hour TTL (Anthropic)."""
    reasoning_tokens: int = 0


@dataclass
class FakeReply:
    """What the server answers to the next request (see :meth:`FakeProviderServer.queue`)."""

    text: str = "This is a reply from the local fake provider."
    usage: FakeUsage | None = None
    """``None``: computed from the request and reply text (about 4 characters a token)."""
    model: str | None = None
    """The served model; default: the requested model."""
    status: int = 200
    error_message: str = "fake provider error"
    omit_usage: bool = False
    """Leave usage out of the response entirely (a provider or proxy that omits it)."""
    cut_stream_after: int | None = None
    """Close the connection after this many stream events (a stream cut short)."""
    gzip: bool = False
    """Send the body gzip-encoded (``Content-Encoding: gzip``)."""
    service_tier: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Provider-specific knobs (documented by each provider module)."""


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class FakeResponse:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    stream: Iterable[bytes] | None = None
    cut_after: int | None = None
    gzip: bool = False


@dataclass
class Exchange:
    """One request the server answered, as a test reads it back."""

    provider: str
    operation: str
    path: str
    request_headers: dict[str, str]
    request_json: Any
    status: int
    response_id: str | None
    model: str | None
    usage: FakeUsage | None
    streamed: bool
    usage_sent: bool


Handler = Callable[["FakeProviderServer", FakeRequest, "re.Match[str]"], FakeResponse]


def estimate_tokens(text: str) -> int:
    """About four characters a token, never less than one (deterministic)."""
    return max(1, (len(text) + 3) // 4)


def collect_text(value: Any) -> str:
    """All string leaves of a JSON value, joined: the "prompt" of any request format."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(collect_text(v) for k, v in value.items()
                        if k not in ("model", "stream", "role", "type"))
    if isinstance(value, list):
        return " ".join(collect_text(v) for v in value)
    return ""


class FakeProviderServer:
    """The fake provider.

    ``with FakeProviderServer() as fake: OpenAI(base_url=fake.openai_url, api_key="x")``
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._replies: collections.deque[FakeReply] = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.exchanges: list[Exchange] = []
        self.responder: Callable[[str, Any], FakeReply] | None = None
        """Optional ``fn(provider, request_json) -> FakeReply`` used when no reply is queued."""
        self._httpd = _Server((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        from paid_hooks.testing.fake import register_all_routes

        register_all_routes(self)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            name="fake-provider", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_url(self) -> str:
        """``base_url`` for OpenAI and OpenAI-compatible SDKs."""
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        """``base_url`` for the Anthropic SDK."""
        return self.url

    # -- scripting ----------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler, *, first: bool = False) -> None:
        """Register a handler for requests whose path fully matches ``pattern``.

        Routes are tried in order; ``first=True`` puts this one before all others (for a
        provider whose paths are a more specific form of another's).
        """
        entry = (method.upper(), re.compile(pattern), handler)
        if first:
            self._routes.insert(0, entry)
        else:
            self._routes.append(entry)

    def queue(self, *replies: FakeReply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._replies.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self.exchanges.clear()
        self.responder = None

    def next_reply(self, provider: str, request_json: Any) -> FakeReply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self.responder is not None:
            return self.responder(provider, request_json)
        return FakeReply()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}fake"

    def usage_for(self, reply: FakeReply, request_json: Any) -> FakeUsage:
        if reply.usage is not None:
            return reply.usage
        prompt = collect_text(request_json)
        return FakeUsage(input_tokens=estimate_tokens(prompt) + 8,
                         output_tokens=estimate_tokens(reply.text))

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def begin_json(self, request: FakeRequest,
                   provider: str) -> tuple[Any, FakeReply, Any, bool, FakeUsage]:
        """``(body, reply, model, stream, usage)`` of a JSON request with ``model`` and
        ``stream`` fields: the next reply is taken, the served model is the reply's or the
        requested one, the usage the reply's or one estimated from the texts."""
        body = request.json()
        reply = self.next_reply(provider, body)
        return (body, reply, reply.model or body.get("model"), bool(body.get("stream")),
                self.usage_for(reply, body))

    def record_error(self, provider: str, operation: str, request: FakeRequest, body: Any,
                     reply: FakeReply, model: str | None, streamed: bool, *,
                     response_id: str | None = None) -> None:
        """Log an exchange answered with the error status of ``reply`` (no usage sent)."""
        self.record(Exchange(provider, operation, request.path, request.headers, body,
                             reply.status, response_id, model, None, streamed, False))

    # -- dispatch -----------------------------------------------------------------------

    def dispatch(self, request: FakeRequest) -> FakeResponse:
        for method, pattern, handler in self._routes:
            if method != request.method:
                continue
            match = pattern.fullmatch(request.path)
            if match:
                return handler(self, request, match)
        return json_response(404, {"error": {"message": f"no fake route for {request.path}"}})


def json_response(status: int, payload: Any, *, gzip_body: bool = False,
                  headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse(status=status,
                        headers={"content-type": "application/json", **(headers or {})},
                        body=json.dumps(payload).encode(), gzip=gzip_body)


def sse_response(events: Iterable[bytes], *, cut_after: int | None = None,
                 gzip_body: bool = False, headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse(status=200,
                        headers={"content-type": "text/event-stream", **(headers or {})},
                        stream=events, cut_after=cut_after, gzip=gzip_body)


def text_pieces(text: str, size: int = 12) -> list[str]:
    """``text`` cut into stream deltas of ``size`` characters (``[""]`` for no text)."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def usage_sent(reply: FakeReply, stream: bool) -> bool:
    """Whether the response carries its usage: not omitted, and not in a stream cut short."""
    return not reply.omit_usage and not (stream and reply.cut_stream_after is not None)


def sse_event(data: Any, event: str | None = None, terminator: bytes = b"\n\n") -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return (head + f"data: {payload}").encode() + terminator


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # many concurrent clients in the concurrency tests
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-stream (a test closing a stream early) is expected."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def _make_handler(server: FakeProviderServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = FakeRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            try:
                response = server.dispatch(request)
            except Exception as exc:  # a bug in a fake handler: answer 500, visibly
                response = json_response(500, {"error": {"message": f"fake server: {exc!r}"}})
            self._send(response)

        def _send(self, response: FakeResponse) -> None:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            if response.stream is None:
                body = response.body or b""
                if response.gzip:
                    body = gzip.compress(body)
                    self.send_header("content-encoding", "gzip")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            if response.gzip:
                self.send_header("content-encoding", "gzip")
            self.end_headers()
            self.close_connection = True
            events: Iterator[bytes] = iter(response.stream)
            if response.cut_after is not None:
                events = itertools.islice(events, response.cut_after)
            compressor = _Gzipper() if response.gzip else None
            try:
                for chunk in events:
                    data = compressor.feed(chunk) if compressor else chunk
                    if data:
                        self.wfile.write(data)
                        self.wfile.flush()
                if compressor:
                    self.wfile.write(compressor.finish())
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_POST = _handle
        do_GET = _handle

    return _Handler


class _Gzipper:
    def __init__(self) -> None:
        import zlib

        self._z = zlib.compressobj(9, zlib.DEFLATED, 31)

    def feed(self, data: bytes) -> bytes:
        import zlib

        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush()
