"""``paid_hooks.plugin_kit``: the building blocks the plugins share."""

from __future__ import annotations

import gc
import inspect
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pydantic
import pytest

import paid_hooks
from paid_hooks import plugin_kit
from paid_hooks.plugin_kit import (
    ClientProxy,
    MethodPatcher,
    SdkClientProxy,
    as_mapping,
    as_str,
    call_exclusive,
    call_exclusive_async,
    count,
    declares_fields,
    field,
    field_reader,
    has_attribute,
    instrument_hooks,
    lazy_exports,
    mixin_view,
    number_count,
    on_collect,
    recording_method,
)

# -- plugin module boilerplate --------------------------------------------------------------


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway package ``kitpkg`` with a ``_wrapper`` and a ``_switch`` submodule."""
    root = tmp_path / "kitpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "_wrapper.py").write_text("class Wrapped:\n    pass\n")
    (root / "_switch.py").write_text(textwrap.dedent("""
        calls = []

        def patch():
            calls.append("on")

        def unpatch():
            calls.append("off")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "kitpkg"
    for name in [m for m in sys.modules if m == "kitpkg" or m.startswith("kitpkg.")]:
        del sys.modules[name]


def test_lazy_exports_imports_the_submodule_on_first_access(package):
    getattr_ = lazy_exports(package, {"Wrapped": "_wrapper"})
    assert f"{package}._wrapper" not in sys.modules
    wrapped = getattr_("Wrapped")
    assert wrapped is sys.modules[f"{package}._wrapper"].Wrapped
    with pytest.raises(AttributeError):
        getattr_("Missing")


def test_plugins_export_their_wrappers_lazily():
    import paid_hooks_openai
    from paid_hooks_openai import _wrapper

    assert paid_hooks_openai.PaidOpenAI is _wrapper.PaidOpenAI
    with pytest.raises(AttributeError):
        paid_hooks_openai.NoSuchThing  # noqa: B018


def test_instrument_hooks_switch_the_module_on_and_off(package):
    instrument, uninstrument = instrument_hooks(f"{package}._switch")
    uninstrument()  # never instrumented: nothing to undo, nothing imported
    assert f"{package}._switch" not in sys.modules
    instrument()
    uninstrument()
    assert sys.modules[f"{package}._switch"].calls == ["on", "off"]
    for hook in (instrument, uninstrument):
        assert getattr(hook, f"{paid_hooks.hookspecs.PROJECT}_impl", None) is not None


def test_instrument_hooks_take_other_function_names(package):
    module = f"{package}._switch"
    instrument, _ = instrument_hooks(module, on="unpatch", off="patch")
    instrument()
    assert sys.modules[module].calls == ["off"]


def test_instrument_raises_import_error_for_a_missing_module():
    instrument, uninstrument = instrument_hooks("paid_hooks_no_such_plugin._patch")
    with pytest.raises(ImportError):
        instrument()
    uninstrument()


# -- wrapping -------------------------------------------------------------------------------


class _Resource:
    def __init__(self) -> None:
        self.state = 1

    def method(self, x: int) -> int:
        return x + self.state


class _Proxy(ClientProxy):
    __slots__ = ()

    def method(self, x: int) -> int:
        return 100 + self._paid_wrapped.method(x)


def test_client_proxy_passes_everything_through_but_its_overrides():
    resource = _Resource()
    proxy = _Proxy(resource)
    assert proxy.state == 1 and proxy.method(1) == 102
    proxy.state = 5
    assert resource.state == 5
    assert "state" in dir(proxy) and "method" in dir(proxy)
    assert repr(proxy) == f"_Proxy({resource!r})"


class _Client:
    def __init__(self, **options: Any) -> None:
        self.options = options

    def with_options(self, **options: Any) -> _Client:
        return _Client(**{**self.options, **options})

    def copy(self, **options: Any) -> _Client:
        return _Client(**options)


class _PaidClient(SdkClientProxy):
    __slots__ = ()


def test_sdk_client_proxy_wraps_the_copies_it_returns():
    client = _PaidClient(_Client(timeout=1))
    configured = client.with_options(max_retries=0)
    assert type(configured) is _PaidClient
    assert configured.options == {"timeout": 1, "max_retries": 0}
    assert type(client.copy(timeout=2)) is _PaidClient and client.copy().options == {}


class _Recording:
    def method(self, x: int) -> int:
        return -super().method(x)  # type: ignore[misc]


def test_mixin_view_shares_state_and_puts_the_mixin_first():
    resource = _Resource()
    view = mixin_view(resource, _Recording)
    assert isinstance(view, _Resource) and isinstance(view, _Recording)
    assert view.method(1) == -2
    view.state = 3
    assert resource.state == 3
    assert type(mixin_view(_Resource(), _Recording)) is type(view)  # one class per pair
    assert type(view).__name__ == "Paid_Resource"
    assert type(view).__module__ == _Recording.__module__
    assert mixin_view(view, _Recording) is view


# -- patching -------------------------------------------------------------------------------


def _make_target() -> type:
    class Target:
        def sync(self, x: int) -> tuple[str, int]:
            return "sync", x

        async def asynchronous(self, x: int) -> tuple[str, int]:
            return "async", x

    return Target


def _negated(original: Any) -> Any:
    def replacement(self: Any, x: int) -> Any:
        return original(self, -x)

    return replacement


def test_method_patcher_restores_the_exact_originals():
    target = _make_target()
    original = target.__dict__["sync"]
    patcher = MethodPatcher()
    patcher.patch([(target, "sync", _negated)])
    assert patcher.active and patcher.original(target, "sync") is original
    assert target().sync(1) == ("sync", -1)
    patcher.patch([(target, "sync", _negated)])  # idempotent: not wrapped twice
    assert target().sync(1) == ("sync", -1)
    patcher.unpatch()
    patcher.unpatch()
    assert target.__dict__["sync"] is original and not patcher.active
    assert patcher.original(target, "sync") is None


def test_method_patcher_is_all_or_nothing():
    target = _make_target()
    original = target.__dict__["sync"]
    patcher = MethodPatcher()
    with pytest.raises(KeyError):
        patcher.patch([(target, "sync", _negated), (target, "missing", _negated)])
    assert target.__dict__["sync"] is original and not patcher.active


def test_recording_method_routes_calls_through_the_recorder():
    seen: list[Any] = []

    def record(bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *extra: Any) -> Any:
        seen.append((args, kwargs, extra))
        return bound(*args, **kwargs)

    target = _make_target()
    patcher = MethodPatcher()
    patcher.patch([(target, "sync", recording_method(record, lambda obj: type(obj).__name__))])
    instance = target()
    assert instance.sync(3) == ("sync", 3)
    assert seen == [((3,), {}, ("Target",))]
    assert target.sync.__name__ == "sync"  # the original's metadata
    patcher.unpatch()


async def test_recording_method_awaits_for_async_methods_and_honours_bypass():
    seen: list[Any] = []
    bypassed = False

    async def record(bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        seen.append(args)
        return await bound(*args, **kwargs)

    target = _make_target()
    patcher = MethodPatcher()
    patcher.patch([(target, "asynchronous",
                    recording_method(record, asynchronous=True, bypass=lambda: bypassed))])
    assert inspect.iscoroutinefunction(target.asynchronous)
    assert await target().asynchronous(x=2) == ("async", 2)
    bypassed = True
    assert await target().asynchronous(5) == ("async", 5)
    assert seen == [()]  # the keyword call was recorded, the bypassed one was not
    patcher.unpatch()


# -- recording a call -----------------------------------------------------------------------


def _handle() -> paid_hooks.CallHandle:
    return paid_hooks.start_call(provider="openai", operation="chat", request_model="gpt-4o",
                                 captured_by="kit_test")


def test_call_exclusive_runs_inside_the_handle_and_records_failures(paid_ledger):
    def sdk_call(x: int, *, y: int) -> tuple[str | None, int]:
        return paid_hooks.call_in_flight(), x + y

    error = ValueError("boom")

    def failing() -> None:
        raise error

    with paid_hooks.paid_tracing("acme", external_agent_id="kit"):
        handle = _handle()
        assert call_exclusive(handle, sdk_call, (1,), {"y": 2}) == ("kit_test", 3)
        assert paid_hooks.call_in_flight() is None
        handle.finish(paid_hooks.Usage(input_tokens=10, output_tokens=2))
        with pytest.raises(ValueError) as raised:
            call_exclusive(_handle(), failing, (), {})
        seen: list[BaseException] = []
        with pytest.raises(ValueError):
            call_exclusive(_handle(), failing, (), {}, on_error=seen.append)
    assert raised.value is error and seen == [error]  # the SDK's own exception, unchanged
    rows = paid_ledger.calls()
    assert [r["cost_status"] for r in rows] == ["priced", "no_charge"]  # on_error recorded none


async def test_call_exclusive_async_records_a_failure_and_reraises(paid_ledger):
    async def failing() -> None:
        assert paid_hooks.call_in_flight() == "kit_test"
        raise RuntimeError("down")

    async with paid_hooks.paid_tracing("acme", external_agent_id="kit"):
        with pytest.raises(RuntimeError, match="down"):
            await call_exclusive_async(_handle(), failing, (), {})
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"


def test_on_collect_runs_when_the_object_is_collected():
    class Stream:
        pass

    closed: list[str] = []
    stream = Stream()
    finalizer = on_collect(stream, closed.append, "collected")
    assert finalizer.atexit is False
    del stream
    gc.collect()
    assert closed == ["collected"]
    with pytest.raises(TypeError):
        on_collect(1, closed.append, "never")


# -- reading SDK objects and JSON -----------------------------------------------------------


def test_field_reads_objects_and_mappings():
    assert field({"a": 1}, "a") == 1
    assert field(MappingProxyType({"a": 1}), "a") == 1
    assert field(SimpleNamespace(a=2), "a") == 2
    assert field(SimpleNamespace(a=None), "a", 7) == 7
    assert field(None, "a") is None and field({}, "a", 0) == 0


class _Model(pydantic.BaseModel):
    """An SDK-like model: extra fields allowed, one property, one private attribute."""

    model_config = pydantic.ConfigDict(extra="allow")
    a: int | None = None
    b: str = "b"
    _secret: int = pydantic.PrivateAttr(default=7)

    @property
    def shown(self) -> str:
        return "property"


def _reference(obj: Any, name: str) -> Any:
    """What ``field`` promises: ``.get`` on a mapping, ``getattr`` on anything else."""
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


_NAMES = ("a", "b", "c", "shown", "_secret", "missing", "model_fields_set")


@pytest.mark.parametrize("obj", [
    _Model(a=1),
    _Model(),
    _Model(a=2, c="extra"),
    _Model.model_construct(c=3),  # a field absent from __dict__
    {"a": 1, "shown": 2},
    MappingProxyType({"b": 2}),
    SimpleNamespace(a=1, c=None),
    None,
])
def test_field_and_field_reader_read_what_getattr_reads(obj):
    for _ in range(2):  # the per-class decision is cached after the first read
        assert [field(obj, name) for name in _NAMES] == [_reference(obj, n) for n in _NAMES]
        assert field(obj, "missing", 5) == 5
        assert field_reader(*_NAMES)(obj) == tuple(_reference(obj, n) for n in _NAMES)
        assert field_reader("a", "b")(obj) == (_reference(obj, "a"), _reference(obj, "b"))
        assert field_reader("a", "c")(obj) == (_reference(obj, "a"), _reference(obj, "c"))
        assert [has_attribute(obj, name) for name in _NAMES] == [
            hasattr(obj, name) for name in _NAMES]


def test_field_reads_absent_fields_of_a_model_without_raising_inside():
    raised: list[str] = []

    class Watched(_Model):
        def __getattr__(self, item: str) -> Any:  # a custom __getattr__ is honoured
            raised.append(item)
            return super().__getattr__(item)  # type: ignore[misc]

    assert field(Watched(), "missing", 1) == 1 and raised == ["missing"]
    raised.clear()
    assert field(_Model(), "missing") is None  # pydantic's own: read from the instance
    assert declares_fields(_Model, "a", "b") and not declares_fields(_Model, "a", "c")
    assert not declares_fields(dict, "a")
    with pytest.raises(ValueError):
        field_reader("a")


def test_as_mapping_and_as_str():
    assert as_mapping({"a": 1}) == {"a": 1}
    assert as_mapping([1]) == {} and as_mapping(None) == {}
    assert as_str("gpt-4o") == "gpt-4o"
    assert as_str("") is None and as_str(3) is None


@pytest.mark.parametrize(("value", "lenient", "numeric"), [
    (12, 12, 12),
    (12.9, 12, 12),
    ("12", 12, None),
    (True, None, None),
    (None, None, None),
    ("x", None, None),
    ([1], None, None),
])
def test_counts(value, lenient, numeric):
    assert count(value) == lenient
    assert number_count(value) == numeric


def test_everything_exported_is_documented():
    for name in plugin_kit.__all__:
        obj = getattr(plugin_kit, name)
        assert name == "PatchTarget" or obj.__doc__, name
