"""Auto-instrumentation: patch the SDK's message resource classes (undone by :func:`unpatch`).

Patched: ``create``, ``parse`` and ``stream`` of ``Messages`` and ``AsyncMessages`` in
``anthropic.resources.messages`` and ``anthropic.resources.beta.messages``. The original
functions are kept and put back exactly.
"""

from __future__ import annotations

from typing import Any

from paid_hooks.plugin_kit import MethodPatcher, PatchTarget, recording_method
from paid_hooks_anthropic._calls import record_create, record_create_async, record_stream

__all__ = ["patch", "unpatch"]

_patcher = MethodPatcher()


def _resource(resource: Any) -> Any:
    """The recorders' last argument: the resource the method was called on."""
    return resource


def _targets() -> list[PatchTarget]:
    from anthropic.resources.beta.messages import messages as beta_messages
    from anthropic.resources.messages import messages

    create = recording_method(record_create, _resource)
    create_async = recording_method(record_create_async, _resource, asynchronous=True)
    stream = recording_method(record_stream, _resource)
    targets: list[PatchTarget] = []
    for module in (messages, beta_messages):
        for cls, make in ((module.Messages, create), (module.AsyncMessages, create_async)):
            targets += [(cls, "create", make), (cls, "parse", make), (cls, "stream", stream)]
    return targets


def patch() -> None:
    """Idempotent; raises ImportError when anthropic is not installed."""
    _patcher.patch(_targets())


def unpatch() -> None:
    """Put every original back. Idempotent."""
    _patcher.unpatch()
