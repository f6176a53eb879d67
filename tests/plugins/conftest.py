"""Mark every plugin test with its plugin's name, so ``pytest -m langchain`` selects one.

Also holds the fixtures that several test files of one plugin share (requested by name
or with ``pytest.mark.usefixtures``, never autouse here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import paid_hooks

PLUGINS = sorted(("openai", "anthropic", "mistral", "bedrock", "gemini", "httpx", "langchain",
                  "llamaindex", "openai_agents"), key=len, reverse=True)


def plugin_of(filename: str) -> str | None:
    stem = filename.removeprefix("test_").removesuffix(".py")
    for name in PLUGINS:
        if stem == name or stem.startswith(name + "_"):
            return name
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        name = plugin_of(item.path.name)
        if name is not None:
            item.add_marker(getattr(pytest.mark, name))


@pytest.fixture
def agents_tracing() -> Iterator[None]:
    """A fresh Agents SDK trace provider without the default exporter; the old one restored
    (and the openai_agents and openai plugins uninstrumented) after."""
    from agents.tracing import get_trace_provider, set_trace_provider
    from agents.tracing.provider import DefaultTraceProvider

    previous = get_trace_provider()
    set_trace_provider(DefaultTraceProvider())
    try:
        yield
    finally:
        paid_hooks.uninstrument("openai_agents", "openai")
        set_trace_provider(previous)


@pytest.fixture
def reader_threads(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], list[str]]:
    """``reader_threads(owner, name)`` wraps the function ``owner.name`` (restored after the
    test) and returns the list of the names of the threads it then runs on, in order."""
    def watch(owner: Any, name: str) -> list[str]:
        threads: list[str] = []
        original = getattr(owner, name)

        def watched(*args: Any, **kwargs: Any) -> Any:
            threads.append(threading.current_thread().name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, watched)
        return threads

    return watch
