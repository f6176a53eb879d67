"""The plugin manager: tolerant entry-point loading, guarded hook dispatch."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from typing import Any

import pluggy

from paid_hooks import hookspecs

__all__ = ["get_plugin_manager", "instrument", "register_plugin", "reset_plugin_manager",
           "uninstrument", "unregister_plugin"]

log = logging.getLogger("paid_hooks.plugins")

ENTRY_POINT_GROUP = "paid_hooks"

_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_instrumented: set[str] = set()


def _new_manager() -> pluggy.PluginManager:
    from paid_hooks import pricing

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in _disabled_names():
        pm.set_blocked(name)
    pm.register(pricing.BuiltinPricing(), name="paid_hooks.pricing")
    pm.register(pricing.OVERRIDES, name="paid_hooks.price_overrides")
    _load_entry_points(pm)
    if hook_tracing_enabled():
        pm.trace.root.setwriter(log.debug)
        pm.enable_tracing()
    return pm


def hook_tracing_enabled() -> bool:
    """Whether hook calls are traced (``PAID_HOOKS_TRACE=1``): every call then goes
    through the plugin manager, so that the trace shows it."""
    return os.environ.get("PAID_HOOKS_TRACE") == "1"


def _disabled_names() -> list[str]:
    raw = os.environ.get("PAID_HOOKS_DISABLE", "")
    return [n.strip() for n in raw.split(",") if n.strip()]


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Load ``paid_hooks`` entry points one at a time; a missing extra skips one plugin."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except ModuleNotFoundError as exc:
            own_module = ep.value.split(":")[0].split(".")[0]
            if exc.name and exc.name.split(".")[0] == own_module:
                log.warning("paid_hooks plugin %r is registered but not importable: %s",
                            ep.name, exc)
            else:
                log.debug("paid_hooks plugin %r skipped: %s (pip install 'paid-hooks[%s]')",
                          ep.name, exc, ep.name.replace("_", "-"))
            continue
        except Exception:
            log.warning("paid_hooks plugin %r failed to load", ep.name, exc_info=True)
            continue
        try:
            pm.register(plugin, name=ep.name)
        except Exception:
            log.warning("paid_hooks plugin %r failed to register", ep.name, exc_info=True)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built (and entry points loaded) on first use."""
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                _manager = _new_manager()
    return _manager


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module (hooks marked ``@paid_hooks.hookimpl``) in-process.

    For plugins that are not published through the ``paid_hooks`` entry-point group, e.g.
    a negotiated-price hook or a cost observer defined in the application. Returns the
    name it was registered under; :class:`ValueError` if that name is taken.
    """
    registered = get_plugin_manager().register(plugin, name=name)
    if registered is None:
        raise ValueError(f"plugin {name!r} is blocked")
    return registered


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`. Unknown names are ignored."""
    pm = get_plugin_manager()
    if pm.has_plugin(name):
        pm.unregister(name=name)


def reset_plugin_manager() -> None:
    """Uninstrument everything and forget the manager (tests and :func:`paid_hooks.shutdown`)."""
    global _manager
    with _lock:
        if _manager is not None:
            uninstrument()
        _instrumented.clear()
        _manager = None


def _plugins_with(hook: str, names: tuple[str, ...]) -> list[tuple[str, Any]]:
    pm = get_plugin_manager()
    selected = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None or (names and name not in names):
            continue
        impl = getattr(plugin, hook, None)
        if impl is not None and callable(impl):
            selected.append((name, impl))
    return selected


def instrument(*names: str) -> list[str]:
    """Turn on auto-instrumentation for all installed plugins, or only the ``names`` given.

    Idempotent. A plugin whose framework is missing is skipped with a debug message
    naming the extra. Returns the names of the plugins that are instrumented afterwards.
    """
    with _lock:
        pm = get_plugin_manager()
        unknown = [n for n in names if not pm.has_plugin(n)]
        for n in unknown:
            log.warning("paid_hooks: no plugin named %r (pip install 'paid-hooks[%s]')",
                        n, n.replace("_", "-"))
        for name, impl in _plugins_with("instrument", names):
            if name in _instrumented:
                continue
            try:
                impl()
            except ImportError as exc:
                log.debug("paid_hooks plugin %r not instrumented: %s "
                          "(pip install 'paid-hooks[%s]')", name, exc, name.replace("_", "-"))
                continue
            except Exception:
                log.warning("paid_hooks plugin %r failed to instrument", name, exc_info=True)
                continue
            _instrumented.add(name)
        return sorted(_instrumented)


def uninstrument(*names: str) -> None:
    """Turn auto-instrumentation off for all plugins, or only the ``names`` given. Idempotent."""
    with _lock:
        if _manager is None:
            return
        for name, impl in _plugins_with("uninstrument", names):
            if name not in _instrumented:
                continue
            try:
                impl()
            except Exception:
                log.warning("paid_hooks plugin %r failed to uninstrument", name, exc_info=True)
            _instrumented.discard(name)
