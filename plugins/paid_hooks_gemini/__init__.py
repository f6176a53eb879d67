"""paid-hooks plugin for the Google Gen AI SDK (``pip install 'paid-hooks[gemini]'``).

Two ways in:

* ``PaidGemini(genai.Client(...))``: a wrapper that behaves exactly like the client it
  wraps and records ``models.generate_content``, ``models.generate_content_stream`` and
  ``models.embed_content`` (and chats), sync and through ``.aio``;
* ``paid_hooks.instrument("gemini")``: patches the SDK's ``Models``/``AsyncModels`` so
  that plain ``genai.Client()`` clients are recorded too;
  ``paid_hooks.uninstrument("gemini")`` restores them.

Calls are recorded as provider ``gcp.gemini`` (``gcp.vertex_ai`` for a Vertex AI
client), priced with genai-prices' ``google`` prices, one row per API request. This
module imports nothing from ``google.genai`` until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from paid_hooks_gemini._wrapper import PaidAsyncGemini, PaidGemini

__all__ = ["PaidAsyncGemini", "PaidGemini", "instrument", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidGemini": "_wrapper",
                                                 "PaidAsyncGemini": "_wrapper"})
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._patch")
