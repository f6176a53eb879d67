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

from typing import TYPE_CHECKING

from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from paid_hooks_anthropic._wrapper import PaidAnthropic, PaidAsyncAnthropic

__all__ = ["PaidAnthropic", "PaidAsyncAnthropic", "instrument", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidAnthropic": "_wrapper",
                                                 "PaidAsyncAnthropic": "_wrapper"})
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._patch")
