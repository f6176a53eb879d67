"""paid-hooks plugin for the Mistral Python SDK (``pip install 'paid-hooks[mistral]'``).

Two ways in:

* ``PaidMistral(Mistral(...))``: a wrapper that behaves exactly like the client it wraps
  and records ``chat.complete``/``complete_async``/``stream``/``stream_async``,
  ``embeddings.create``/``create_async`` and ``ocr.process``/``process_async``;
* ``paid_hooks.instrument("mistral")``: patches the SDK's resource classes so that plain
  ``Mistral()`` clients are recorded too; ``paid_hooks.uninstrument("mistral")`` restores
  them.

Calls are recorded as provider ``mistral_ai`` (priced with genai-prices' ``mistral``
prices). This module imports nothing from ``mistralai`` until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from paid_hooks_mistral._wrapper import PaidMistral

__all__ = ["PaidMistral", "instrument", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidMistral": "_wrapper"})
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._patch")
