"""Auto-instrumentation: patch the SDK's resource classes (undone by :func:`unpatch`).

Patched: ``Chat.complete/complete_async/stream/stream_async``,
``Embeddings.create/create_async`` and ``Ocr.process/process_async``, so every
``Mistral()`` client in the process is recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from paid_hooks.plugin_kit import MethodPatcher, PatchTarget, recording_method
from paid_hooks_mistral._calls import (
    CHAT,
    EMBEDDINGS,
    OCR,
    Operation,
    record_async,
    record_stream,
    record_stream_async,
    record_sync,
)

__all__ = ["patch", "unpatch"]

_patcher = MethodPatcher()


def _sync(op: Operation) -> Callable[[Any], Any]:
    return recording_method(functools.partial(record_sync, op=op))


def _async(op: Operation) -> Callable[[Any], Any]:
    return recording_method(functools.partial(record_async, op=op), asynchronous=True)


def _targets() -> list[PatchTarget]:
    from mistralai.client.chat import Chat
    from mistralai.client.embeddings import Embeddings
    from mistralai.client.ocr import Ocr

    return [
        (Chat, "complete", _sync(CHAT)),
        (Chat, "complete_async", _async(CHAT)),
        (Chat, "stream", recording_method(record_stream)),
        (Chat, "stream_async", recording_method(record_stream_async, asynchronous=True)),
        (Embeddings, "create", _sync(EMBEDDINGS)),
        (Embeddings, "create_async", _async(EMBEDDINGS)),
        (Ocr, "process", _sync(OCR)),
        (Ocr, "process_async", _async(OCR)),
    ]


def patch() -> None:
    """Idempotent; raises ImportError when mistralai is not installed."""
    _patcher.patch(_targets())


def unpatch() -> None:
    """Restore the original methods. Idempotent."""
    _patcher.unpatch()
