"""Canned provider responses served by ``httpx.MockTransport``: no socket, no network.

Every contender of a benchmark gets the very same bytes: an OpenAI chat completion (JSON,
or an SSE stream of ``CHUNKS`` content chunks plus the usage chunk) and an Anthropic
message (JSON, or the SSE event sequence of the Messages API). The handler builds a
fresh ``httpx.Response`` per request, as a real transport would.
"""

from __future__ import annotations

import atexit
import itertools
import json
import shutil
import tempfile
from typing import Any

import httpx

__all__ = [
    "ANTHROPIC_MODEL",
    "CHUNKS",
    "MESSAGES",
    "OPENAI_MODEL",
    "anthropic_handler",
    "openai_handler",
    "scratch_dir",
]

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
CHUNKS = 20
"""Content chunks per streamed response (the overhead is reported per stream)."""
MESSAGES = [{"role": "user", "content": "Write one line about the sea."}]

_ID_PLACEHOLDER = b"XXXXXXXXXXXX"
_OPENAI_USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                 "prompt_tokens_details": {"cached_tokens": 200, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}


def _openai_json() -> bytes:
    return json.dumps({
        "id": "chatcmpl-XXXXXXXXXXXX", "object": "chat.completion", "created": 1764200000,
        "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench",
        "service_tier": "default",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": "The sea keeps time.",
                                 "refusal": None}}],
        "usage": _OPENAI_USAGE,
    }).encode()


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _openai_stream() -> bytes:
    base = {"id": "chatcmpl-XXXXXXXXXXXX", "object": "chat.completion.chunk", "created": 1764200000,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_bench",
            "service_tier": "default"}
    parts = [_sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                "content": ""},
                                         "finish_reason": None}], "usage": None})]
    for i in range(CHUNKS):
        parts.append(_sse({**base, "choices": [{"index": 0, "delta": {"content": f"w{i} "},
                                                "finish_reason": None}], "usage": None}))
    parts.append(_sse({**base, "choices": [{"index": 0, "delta": {},
                                            "finish_reason": "stop"}], "usage": None}))
    parts.append(_sse({**base, "choices": [], "usage": _OPENAI_USAGE}))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


_ANTHROPIC_USAGE = {"input_tokens": 1000, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 200, "output_tokens": 300,
                    "service_tier": "standard"}


def _anthropic_json() -> bytes:
    return json.dumps({
        "id": "msg_XXXXXXXXXXXX", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": "The sea keeps time."}],
        "stop_reason": "end_turn", "stop_sequence": None, "usage": _ANTHROPIC_USAGE,
    }).encode()


def _anthropic_stream() -> bytes:
    start = {"id": "msg_XXXXXXXXXXXX", "type": "message", "role": "assistant",
             "model": "claude-sonnet-4-6", "content": [], "stop_reason": None,
             "stop_sequence": None, "usage": {**_ANTHROPIC_USAGE, "output_tokens": 1}}
    parts = [_sse({"type": "message_start", "message": start}, "message_start"),
             _sse({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}, "content_block_start")]
    for i in range(CHUNKS):
        parts.append(_sse({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": f"w{i} "}},
                          "content_block_delta"))
    parts.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    parts.append(_sse({"type": "message_delta",
                       "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 300}}, "message_delta"))
    parts.append(_sse({"type": "message_stop"}, "message_stop"))
    return b"".join(parts)


_BODIES = {
    ("openai", False): (_openai_json(), "application/json"),
    ("openai", True): (_openai_stream(), "text/event-stream"),
    ("anthropic", False): (_anthropic_json(), "application/json"),
    ("anthropic", True): (_anthropic_stream(), "text/event-stream"),
}


def _handler(provider: str, module: Any = httpx) -> Any:
    json_body, json_type = _BODIES[(provider, False)]
    sse_body, sse_type = _BODIES[(provider, True)]

    counter = itertools.count()

    def handle(request: Any) -> Any:
        streaming = b'"stream":true' in request.content.replace(b" ", b"")
        body, content_type = (sse_body, sse_type) if streaming else (json_body, json_type)
        # A unique response id per response, as a provider sends (same length every time).
        body = body.replace(_ID_PLACEHOLDER, b"%012d" % next(counter))
        return module.Response(200, content=body, headers={"content-type": content_type})

    return handle


def openai_handler() -> Any:
    """A ``MockTransport`` handler answering OpenAI chat completions (JSON or SSE)."""
    return _handler("openai")


def anthropic_handler(module: Any = httpx) -> Any:
    """A ``MockTransport`` handler answering Anthropic messages (JSON or SSE).

    ``module`` is the HTTP library the SDK is built on (``httpx``, or ``httpx2`` for
    anthropic >= 2.13), whose ``Response`` the handler returns.
    """
    return _handler("anthropic", module)


def scratch_dir() -> str:
    """A temp dir for a benchmark process's ledger, removed when the process exits.

    Create it before ``initialize_tracing``: exit handlers run last-in first-out, so the
    library's own flush at exit runs before the directory goes.
    """
    path = tempfile.mkdtemp(prefix="paid-hooks-bench-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
