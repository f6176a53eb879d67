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

from typing import TYPE_CHECKING, Any

import paid_hooks

if TYPE_CHECKING:
    from paid_hooks_mistral._wrapper import PaidMistral

__all__ = ["PaidMistral", "instrument", "uninstrument"]


def __getattr__(name: str) -> Any:
    if name == "PaidMistral":
        from paid_hooks_mistral import _wrapper

        return _wrapper.PaidMistral
    raise AttributeError(name)


@paid_hooks.hookimpl
def instrument() -> None:
    """Patch the SDK process-wide. Idempotent; ImportError without ``mistralai``."""
    from paid_hooks_mistral import _patch

    _patch.patch()


@paid_hooks.hookimpl
def uninstrument() -> None:
    """Restore the SDK. Idempotent; never raises when not instrumented."""
    import sys

    patch_module = sys.modules.get("paid_hooks_mistral._patch")
    if patch_module is not None:
        patch_module.unpatch()
