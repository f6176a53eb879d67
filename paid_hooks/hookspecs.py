"""The plugin contract. Each hook's docstring is the contract a plugin must keep.

A plugin is a module (or object) with functions marked ``@paid_hooks.hookimpl`` whose
names match the specifications below, published in the ``paid_hooks`` entry-point group::

    [project.entry-points.paid_hooks]
    my_framework = "my_package.paid_plugin"

Hooks are always called with keyword arguments, and an implementation may accept any
subset of them. The host guards every call: an exception from a plugin is logged and
never reaches the application.
"""

from __future__ import annotations

import pluggy

from paid_hooks.model import AICall, Price, PricedCall, SignalRecord, Unpriced

__all__ = ["call_recorded", "hookimpl", "hookspec", "instrument", "price_call",
           "signal_recorded", "uninstrument"]

PROJECT = "paid_hooks"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def instrument() -> None:
    """Start capturing AI calls of this plugin's framework process-wide.

    Must be idempotent: a second call while instrumented changes nothing. Raise
    :class:`ImportError` when the framework is not installed: the host then skips the
    plugin with a debug message naming the extra to install. Every captured call is
    handed to :func:`paid_hooks.start_call`; a plugin never creates spans itself.
    """


@hookspec
def uninstrument() -> None:
    """Undo :func:`instrument` completely (restore every patched attribute or hook).

    Must be idempotent and must not raise when the plugin was never instrumented.
    """


@hookspec(firstresult=True)
def price_call(call: AICall) -> Price | Unpriced | None:
    """Price one AI call, or return ``None`` to let the next source try.

    Called on the pricing worker thread, never on the application's. The first non-None
    answer wins; user plugins run before the TOML overrides, which run before the
    built-in genai-prices source (registered ``trylast``). Return :class:`Unpriced` with a
    reason to stop the search and record the call as unpriced. ``call.usage`` is never
    ``None`` here (calls without usage are not priced).
    """


@hookspec
def call_recorded(record: PricedCall) -> None:
    """Observe one finished, priced and attributed AI call (on the pipeline thread).

    For exporters and metrics. Must be fast and must not block: the pipeline waits for it.
    """


@hookspec
def signal_recorded(record: SignalRecord) -> None:
    """Observe one recorded signal (on the pipeline thread)."""
