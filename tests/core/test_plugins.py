"""Plugin loading is tolerant; instrument()/uninstrument() are idempotent; docs match hooks."""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
import re
import sys
import types
from pathlib import Path

import pytest

import paid_hooks
from paid_hooks import _plugins, hookspecs


class _EP:
    def __init__(self, name: str, value: str, loader) -> None:
        self.name, self.value, self._loader = name, value, loader

    def load(self):
        return self._loader()


@pytest.fixture
def fresh_manager():
    _plugins.reset_plugin_manager()
    yield
    _plugins.reset_plugin_manager()


def test_a_plugin_with_a_missing_extra_is_skipped(fresh_manager, monkeypatch, caplog):
    good = types.ModuleType("good_plugin")
    good.calls = []

    @paid_hooks.hookimpl
    def instrument() -> None:
        good.calls.append("on")

    good.instrument = instrument

    def missing():
        raise ModuleNotFoundError("No module named 'someframework'", name="someframework")

    eps = [_EP("broken", "broken_plugin", missing), _EP("good", "good_plugin", lambda: good)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps)
    with caplog.at_level(logging.DEBUG, logger="paid_hooks.plugins"):
        instrumented = paid_hooks.instrument()
        assert paid_hooks.instrument() == instrumented
    assert "good" in instrumented and "broken" not in instrumented
    assert good.calls == ["on"], "instrument() is idempotent"
    assert any("pip install 'paid-hooks[broken]'" in r.getMessage() for r in caplog.records)


def test_a_plugin_whose_framework_is_absent_at_instrument_time_is_skipped(
        fresh_manager, monkeypatch, caplog):
    mod = types.ModuleType("lazy_plugin")

    @paid_hooks.hookimpl
    def instrument() -> None:
        import framework_that_is_not_installed  # noqa: F401

    mod.instrument = instrument
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [_EP("lazy", "lazy_plugin", lambda: mod)])
    with caplog.at_level(logging.DEBUG, logger="paid_hooks.plugins"):
        assert paid_hooks.instrument("lazy") == []
    assert any("pip install 'paid-hooks[lazy]'" in r.getMessage() for r in caplog.records)


def test_disable_env_blocks_plugins(fresh_manager, monkeypatch):
    monkeypatch.setenv("PAID_HOOKS_DISABLE", "openai")
    pm = _plugins.get_plugin_manager()
    assert pm.is_blocked("openai") and not pm.has_plugin("openai")


def test_builtin_plugins_load_through_entry_points(fresh_manager):
    pm = _plugins.get_plugin_manager()
    assert pm.has_plugin("openai")
    assert pm.get_plugin("openai") is sys.modules["paid_hooks_openai"]


def test_openai_instrument_roundtrip_restores_the_sdk(fresh_manager):
    from openai.resources.chat.completions import Completions

    original = Completions.create
    assert "openai" in paid_hooks.instrument("openai")
    assert Completions.create is not original
    paid_hooks.uninstrument("openai")
    assert Completions.create is original
    paid_hooks.uninstrument("openai")  # idempotent


def test_every_hook_is_documented_as_a_heading():
    readme = (Path(__file__).parents[2] / "plugins" / "README.md").read_text()
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(fn, "paid_hooks_spec"):
            continue
        params = ", ".join(
            f"{p.name}: {p.annotation}" for p in inspect.signature(fn).parameters.values())
        ret = inspect.signature(fn).return_annotation
        heading = f"### `{name}({params}) -> {ret}`"
        assert heading in readme, f"plugins/README.md lacks the heading {heading}"


def test_public_api_is_sorted_and_complete():
    assert paid_hooks.__all__ == sorted(paid_hooks.__all__)
    for name in paid_hooks.__all__:
        assert hasattr(paid_hooks, name), name
    public = {n for n in vars(paid_hooks) if not n.startswith("_") and not isinstance(
        getattr(paid_hooks, n), types.ModuleType)}
    assert public <= set(paid_hooks.__all__) | {"annotations"}


def test_plugins_import_only_the_public_api():
    plugins = Path(__file__).parents[2] / "plugins"
    public_modules = "testing|plugin_kit|context"
    private = re.compile(
        rf"^\s*(from|import)\s+paid_hooks(\.(?!(?:{public_modules})\b)\w+|\s+import\s+_)", re.M)
    for source in plugins.rglob("*.py"):
        text = source.read_text()
        allowed = re.sub(r"from paid_hooks\.testing[\w.]* import", "", text)
        assert not private.search(allowed), f"{source} imports a private paid_hooks module"
