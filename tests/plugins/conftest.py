"""Mark every plugin test with its plugin's name, so ``pytest -m langchain`` selects one."""

from __future__ import annotations

import pytest

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
