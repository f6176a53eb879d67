"""Classes built once per HTTP library module (``httpx`` and ``httpx2`` each get their own)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

__all__ = ["per_module"]

T = TypeVar("T")


def per_module(build: Callable[[ModuleType], T]) -> Callable[[ModuleType], T]:
    """``build(mod)`` run once per module name (thread-safe); later calls return that result."""
    lock = threading.Lock()
    cache: dict[str, T] = {}

    @functools.wraps(build)
    def built(mod: ModuleType) -> T:
        result = cache.get(mod.__name__)
        if result is None:
            with lock:
                result = cache.get(mod.__name__)
                if result is None:
                    result = cache[mod.__name__] = build(mod)
        return result

    return built
