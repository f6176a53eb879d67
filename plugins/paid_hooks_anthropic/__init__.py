"""paid-hooks plugin for the Anthropic Python SDK (``pip install 'paid-hooks[anthropic]'``).

Two ways in:

* ``PaidAnthropic(Anthropic(...))`` / ``PaidAsyncAnthropic(AsyncAnthropic(...))``: a
  wrapper that behaves exactly like the client it wraps and records every
  ``messages`` / ``beta.messages`` ``create``, ``stream`` and ``parse`` call;
* ``paid_hooks.instrument("anthropic")``: patches the SDK's message resource classes so
  that plain ``Anthropic()`` clients are recorded too; ``paid_hooks.uninstrument("anthropic")``
  restores them exactly.

Both may be active at once: each call is still recorded once. This module imports
nothing from ``anthropic`` until it is used, so loading the plugin is free.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import paid_hooks

if TYPE_CHECKING:
    from paid_hooks_anthropic._wrapper import PaidAnthropic, PaidAsyncAnthropic

__all__ = ["PaidAnthropic", "PaidAsyncAnthropic", "instrument", "uninstrument"]


def __getattr__(name: str) -> Any:
    if name in ("PaidAnthropic", "PaidAsyncAnthropic"):
        from paid_hooks_anthropic import _wrapper

        return getattr(_wrapper, name)
    raise AttributeError(name)


@paid_hooks.hookimpl
def instrument() -> None:
    """Patch the anthropic SDK (idempotent); ImportError when it is not installed."""
    from paid_hooks_anthropic import _patch

    _patch.patch()


@paid_hooks.hookimpl
def uninstrument() -> None:
    """Undo :func:`instrument` exactly (idempotent; a no-op when never instrumented)."""
    patch_module = sys.modules.get("paid_hooks_anthropic._patch")
    if patch_module is not None:
        patch_module.unpatch()
