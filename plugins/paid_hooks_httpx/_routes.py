"""Which HTTP requests are AI calls, and of which provider and wire format.

Classification is cheap and runs on every request a hooked client sends: a method check,
a dict lookup on the host and a few ``str.endswith`` tests on the path. Only ``POST``
requests whose path has a known AI shape are AI calls; everything else is skipped before
any body is looked at.

The *wire format* (how usage is read) comes from the path shape; the *provider* (the
``gen_ai.provider.name`` the call is priced under) comes from the host, else from the
path shape, and ``provider=`` overrides both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "API_ANTHROPIC_MESSAGES",
    "API_GEMINI",
    "API_GEMINI_EMBED",
    "API_OPENAI_CHAT",
    "API_OPENAI_COMPLETIONS",
    "API_OPENAI_EMBEDDINGS",
    "API_OPENAI_RESPONSES",
    "HOST_PROVIDERS",
    "Route",
    "classify",
    "request_details",
]

API_OPENAI_CHAT = "openai.chat"
API_OPENAI_COMPLETIONS = "openai.completions"
API_OPENAI_RESPONSES = "openai.responses"
API_OPENAI_EMBEDDINGS = "openai.embeddings"
API_ANTHROPIC_MESSAGES = "anthropic.messages"
API_GEMINI = "gemini.generate"
API_GEMINI_EMBED = "gemini.embed"

HOST_PROVIDERS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "api.mistral.ai": "mistral_ai",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x_ai",
}
"""Known hosts -> ``gen_ai.provider.name``. Hosts not listed are classified by path shape."""

_HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", "azure.ai.openai"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
)

_GEMINI_PATH = re.compile(
    r"/(?:models|tunedModels)/(?P<model>[^/:]+)"
    r":(?P<method>generateContent|streamGenerateContent|embedContent|batchEmbedContents)$")

_SMALL_BODY = 256 * 1024
"""Request bodies up to this size are parsed as JSON; larger ones are scanned."""

_MODEL_RE = re.compile(rb'"model"\s*:\s*"((?:[^"\\]|\\.){1,256})"')
_STREAM_RE = re.compile(rb'"stream"\s*:\s*true')


@dataclass(frozen=True, slots=True)
class Route:
    """What one AI request is: provider, wire format, operation (and a model in the path)."""

    provider: str
    api: str
    operation: str
    path_model: str | None = None
    stream_path: bool = False


def _shape(path: str) -> tuple[str, str, str | None, bool] | None:
    """``(api, operation, model_in_path, streaming_path)`` for an AI path, else ``None``."""
    if path.endswith("/chat/completions"):
        return API_OPENAI_CHAT, "chat", None, False
    if path.endswith("/v1/messages"):
        return API_ANTHROPIC_MESSAGES, "chat", None, False
    if path.endswith("/responses"):
        return API_OPENAI_RESPONSES, "chat", None, False
    if path.endswith("/embeddings"):
        return API_OPENAI_EMBEDDINGS, "embeddings", None, False
    if path.endswith("/completions"):
        return API_OPENAI_COMPLETIONS, "text_completion", None, False
    if "Content" in path:
        match = _GEMINI_PATH.search(path)
        if match:
            method = match.group("method")
            if method in ("embedContent", "batchEmbedContents"):
                return API_GEMINI_EMBED, "embeddings", match.group("model"), False
            streaming = method == "streamGenerateContent"
            return API_GEMINI, "generate_content", match.group("model"), streaming
    return None


_UNKNOWN_HOST_PROVIDER = {
    API_OPENAI_CHAT: "openai",
    API_OPENAI_RESPONSES: "openai",
    API_OPENAI_EMBEDDINGS: "openai",
    API_OPENAI_COMPLETIONS: "openai",
    API_ANTHROPIC_MESSAGES: "anthropic",
    API_GEMINI: "gcp.gemini",
    API_GEMINI_EMBED: "gcp.gemini",
}


def _host_provider(host: str) -> str | None:
    provider = HOST_PROVIDERS.get(host)
    if provider is not None:
        return provider
    for suffix, name in _HOST_SUFFIXES:
        if host.endswith(suffix):
            return name
    return None


_CLASSIFIED: dict[tuple[str, str, str | None], Route | None] = {}
_CLASSIFIED_LIMIT = 512


def classify(method: str, host: str, path: str, override: str | None = None) -> Route | None:
    """The :class:`Route` of an AI request, or ``None`` for any other request (memoised:
    a client sends to few hosts and paths)."""
    if method != "POST":
        return None
    key = (host, path, override)
    try:
        return _CLASSIFIED[key]
    except KeyError:
        pass
    route = _classify(method, host, path, override)
    if len(_CLASSIFIED) >= _CLASSIFIED_LIMIT:
        _CLASSIFIED.clear()
    _CLASSIFIED[key] = route
    return route


def _classify(method: str, host: str, path: str, override: str | None = None) -> Route | None:
    """The :class:`Route` of an AI request, or ``None`` for any other request.

    On a host that is not in :data:`HOST_PROVIDERS` only the unmistakable OpenAI-compatible
    shapes under ``/v1/`` (``/v1/responses``, ``/v1/embeddings``, ``/v1/completions``) and
    any ``/chat/completions``, ``/v1/messages`` or ``:generateContent`` path count, unless
    ``override`` names the provider (then every known shape counts).
    """
    if method != "POST":
        return None
    shape = _shape(path)
    if shape is None:
        return None
    api, operation, model, streaming = shape
    provider = override or _host_provider(host)
    if provider is None:
        if api in (API_OPENAI_RESPONSES, API_OPENAI_EMBEDDINGS, API_OPENAI_COMPLETIONS) and \
                not path.endswith(("/v1/responses", "/v1/embeddings", "/v1/completions")):
            return None
        provider = _UNKNOWN_HOST_PROVIDER[api]
    return Route(provider, api, operation, model, streaming)


_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = (
    json.JSONDecoder().scan_once)  # type: ignore[attr-defined]  # set in __init__, untyped
"""The C scanner ``json.loads`` ends in (same settings as its default decoder)."""


def loads_text(text: str) -> Any:
    """``json.loads(text)``: for a text starting with ``{`` the C scanner is called directly.

    Same result and same errors (as :class:`ValueError`) as ``json.loads``; what it skips
    is ``json.loads``' Python layers (type checks, ``decode``, ``raw_decode``, two
    whitespace regex matches), about 9,000 instructions per call on CPython 3.11, paid per
    request, per response and per SSE event read.
    """
    if text[:1] != "{":
        return json.loads(text)
    try:
        obj, end = _SCAN_ONCE(text, 0)
    except StopIteration as exc:  # what raw_decode turns into "Expecting value"
        raise ValueError("Expecting value") from exc
    if end != len(text) and text[end:].strip(" \t\n\r"):
        raise ValueError("Extra data")
    return obj


def loads(body: bytes) -> Any:
    """``json.loads(body)``, minus its encoding detection for the usual body: one that
    starts with ``{`` not followed by a NUL byte is UTF-8 (what ``json.loads`` concludes)."""
    if body[:1] == b"{" and body[1:2] != b"\x00":
        return loads_text(body.decode("utf-8", "surrogatepass"))
    return json.loads(body)


def request_details(route: Route, body: bytes | None) -> tuple[str | None, bool]:
    """``(request_model, streaming)`` of a request, read from its path and JSON body.

    Small bodies are parsed; large ones (images, long prompts) are scanned for the two
    top-level keys instead. Never raises.
    """
    model = route.path_model
    streaming = route.stream_path
    if not body or (model is not None and route.api in (API_GEMINI, API_GEMINI_EMBED)):
        return model, streaming
    try:
        if len(body) <= _SMALL_BODY:
            data: Any = loads(body)
            if isinstance(data, dict):
                value = data.get("model")
                if isinstance(value, str):
                    model = value
                streaming = streaming or data.get("stream") is True
            return model, streaming
        match = _MODEL_RE.search(body)
        if match:
            model = json.loads(b'"' + match.group(1) + b'"')
        streaming = streaming or _STREAM_RE.search(body) is not None
    except Exception:
        pass
    return model, streaming
