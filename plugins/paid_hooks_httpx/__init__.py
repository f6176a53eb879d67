"""paid-hooks plugin at the HTTP layer: httpx and httpx2 (``pip install 'paid-hooks[httpx]'``).

One hook records every AI call an ``httpx``/``httpx2`` client sends to an OpenAI-compatible
API (chat completions, responses, embeddings, completions: OpenAI, Mistral, Groq,
OpenRouter, vLLM, any gateway), Anthropic Messages or Gemini ``generateContent``, JSON and
SSE, whatever SDK (or none) builds the request. The caller's byte stream is teed, never
consumed or delayed; usage is parsed from a decoded copy and recorded when the body ends
or is closed. Ways in:

* ``instrument_client(client, provider=None)``: attach event hooks to an existing client
  (``OpenAI(http_client=instrument_client(httpx.Client()))``); ``uninstrument_client``;
* ``PaidTransport`` / ``PaidAsyncTransport`` (httpx) and ``PaidHttpx2Transport`` /
  ``PaidAsyncHttpx2Transport`` (httpx2): transport wrappers (``transport=`` disables env
  proxies: see :mod:`paid_hooks_httpx._transport`);
* ``paid_hooks.instrument("httpx")``: hook every client created from then on.

A call that a wrapper or auto-instrumentation already records (``paid_hooks.call_in_flight()``)
or that runs while OpenTelemetry instrumentation is suppressed is not recorded again.

This module imports neither httpx nor httpx2 until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "PaidAsyncHttpx2Transport",
    "PaidAsyncTransport",
    "PaidHttpx2Transport",
    "PaidTransport",
    "instrument",
    "instrument_client",
    "transport_classes",
    "uninstrument",
    "uninstrument_client",
]

C = TypeVar("C")

_TRANSPORTS = {
    "PaidTransport": ("httpx", 0),
    "PaidAsyncTransport": ("httpx", 1),
    "PaidHttpx2Transport": ("httpx2", 0),
    "PaidAsyncHttpx2Transport": ("httpx2", 1),
}

# instrument(): hook every httpx/httpx2 client created from now on (see ``_patch``).
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._patch")


def __getattr__(name: str) -> Any:
    if name in _TRANSPORTS:
        import importlib

        module_name, index = _TRANSPORTS[name]
        return transport_classes(importlib.import_module(module_name))[index]
    raise AttributeError(name)


def transport_classes(module: ModuleType) -> tuple[type, type]:
    """``(PaidTransport, PaidAsyncTransport)`` for the ``httpx`` or ``httpx2`` module given."""
    from paid_hooks_httpx import _transport

    return _transport.transport_classes(module)


def instrument_client(client: C, *, provider: str | None = None) -> C:
    """Record the AI calls ``client`` sends; returns ``client`` itself.

    ``client`` is an ``httpx``/``httpx2`` ``Client`` or ``AsyncClient``. Idempotent: a
    second call adds nothing (it only updates ``provider`` when one is given).
    ``provider`` overrides the ``gen_ai.provider.name`` inferred from host and path (for
    a gateway on your own host). Raises ``TypeError`` for any other object.
    """
    from paid_hooks_httpx import _hooks

    _hooks.attach(client, provider)
    return client


def uninstrument_client(client: C) -> C:
    """Remove this plugin's hooks from ``client`` (idempotent); returns ``client``."""
    from paid_hooks_httpx import _hooks

    _hooks.detach(client)
    return client
