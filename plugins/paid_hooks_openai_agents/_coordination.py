"""How the run hook and the tracing processor agree on who records a model call.

Both see the same model call: the hook through ``on_llm_start``/``on_llm_end``, the
processor through the generation (or response) span the model opens in between. They
meet on a key made of two ids the Agents SDK generates, never Python object ids:
``(trace_id, id of the span current when the model is called)``. That span (the turn
span, or the agent span in older SDKs) is the current span in the hook's callbacks and
the parent of the model's span.

1. ``on_llm_start`` (hook, only while the processor is active): :meth:`expect` the call
   under its key, with the model name the hook resolved from the agent.
2. Model span start (processor): reads that model name when the span has none
   (a Responses span without sensitive data names no model).
3. Model span end (processor): if it recorded the call and the hook is expecting it,
   :meth:`mark_recorded`.
4. ``on_llm_end`` (hook): :meth:`settle` drops both entries; if the processor recorded
   the call, the hook records nothing.

A model call that raises never reaches ``on_llm_end``: its entries are dropped when the
parent span ends (:meth:`forget`) or the trace ends (:meth:`forget_trace`), and the map
is bounded in any case.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["Coordination", "Key", "coordination"]

Key = tuple[str, str]

_LIMIT = 10_000


class Coordination:
    """Thread-safe, bounded maps of expected and processor-recorded model calls."""

    def __init__(self, limit: int = _LIMIT) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._expected: OrderedDict[Key, str | None] = OrderedDict()
        self._recorded: set[Key] = set()
        self.processor_active = False
        """True while the global tracing processor records calls (``instrument()``)."""

    def expect(self, key: Key, model: str | None) -> None:
        with self._lock:
            self._expected[key] = model
            self._expected.move_to_end(key)
            while len(self._expected) > self._limit:
                old, _ = self._expected.popitem(last=False)
                self._recorded.discard(old)

    def expected(self, key: Key) -> tuple[bool, str | None]:
        """(is the hook expecting a call under ``key``, the model name it resolved)."""
        with self._lock:
            if key in self._expected:
                return True, self._expected[key]
            return False, None

    def mark_recorded(self, key: Key) -> None:
        """The processor recorded a call the hook expects (no-op if none is expected)."""
        with self._lock:
            if key in self._expected:
                self._recorded.add(key)

    def settle(self, key: Key) -> bool:
        """Forget ``key``; True when the processor recorded the call under it."""
        with self._lock:
            self._expected.pop(key, None)
            if key in self._recorded:
                self._recorded.discard(key)
                return True
            return False

    def forget(self, key: Key) -> None:
        """The span ``key`` names has ended: drop whatever was left under it."""
        with self._lock:
            self._expected.pop(key, None)
            self._recorded.discard(key)

    def forget_trace(self, trace_id: str) -> None:
        with self._lock:
            for key in [k for k in self._expected if k[0] == trace_id]:
                del self._expected[key]
            self._recorded = {k for k in self._recorded if k[0] != trace_id}

    def __len__(self) -> int:
        with self._lock:
            return len(self._expected) + len(self._recorded)


coordination = Coordination()
"""The one instance shared by every hook and the processor in this process."""
