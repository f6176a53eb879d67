"""The table of OpenAI SDK methods this plugin records, shared by the wrapper and the patches.

Each :class:`Method` names a resource method (sync and async class), the client attribute
path that reaches it, and the :class:`Operation` that says how to read its result or its
stream. Helper methods (``chat.completions.stream``, ``responses.stream``) are not listed:
they call the resource's own ``create``, which is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from paid_hooks_openai import _readers
from paid_hooks_openai._readers import Reader
from paid_hooks_openai._streams import (
    ChatChunks,
    StreamRecord,
    images_events,
    responses_events,
    transcription_events,
)

__all__ = ["HELPERS", "METHODS", "Method", "Operation"]


@dataclass(frozen=True, slots=True)
class Operation:
    """How to record one kind of call."""

    name: str
    """``gen_ai.operation.name`` recorded in the ledger."""
    read: Reader
    """Reads a non-streamed result."""
    stream: Callable[[bool], StreamRecord] | None = None
    """``factory(hide_usage_chunk) -> StreamRecord`` for ``stream=True`` results, if any."""
    injects_stream_usage: bool = False
    """Add ``stream_options.include_usage`` to streamed requests that lack it (chat only)."""
    reads_later: bool = False
    """``read`` runs on the pipeline worker (``CallHandle.finish_later``): allowed for a
    reader that reads only the result, never the request, and never reports a failure."""


CHAT = Operation("chat", _readers.read_chat, ChatChunks, injects_stream_usage=True,
                 reads_later=True)
RESPONSES = Operation("chat", _readers.read_responses, responses_events)
EMBEDDINGS = Operation("embeddings", _readers.read_embeddings, reads_later=True)
IMAGE_GENERATION = Operation("image_generation", _readers.read_images, images_events)
IMAGE_EDIT = Operation("image_edit", _readers.read_images, images_events)
TRANSCRIPTION = Operation("transcription", _readers.read_transcription, transcription_events)
SPEECH = Operation("text_to_speech", _readers.read_speech)


@dataclass(frozen=True, slots=True)
class Method:
    """One recorded SDK method."""

    path: tuple[str, ...]
    """Attribute path from the client to the resource, e.g. ``("chat", "completions")``."""
    module: str
    sync_class: str
    async_class: str
    name: str
    operation: Operation


METHODS: tuple[Method, ...] = (
    Method(("chat", "completions"), "openai.resources.chat.completions", "Completions",
           "AsyncCompletions", "create", CHAT),
    Method(("chat", "completions"), "openai.resources.chat.completions", "Completions",
           "AsyncCompletions", "parse", CHAT),
    Method(("responses",), "openai.resources.responses", "Responses", "AsyncResponses",
           "create", RESPONSES),
    Method(("responses",), "openai.resources.responses", "Responses", "AsyncResponses",
           "parse", RESPONSES),
    Method(("embeddings",), "openai.resources.embeddings", "Embeddings", "AsyncEmbeddings",
           "create", EMBEDDINGS),
    Method(("images",), "openai.resources.images", "Images", "AsyncImages", "generate",
           IMAGE_GENERATION),
    Method(("images",), "openai.resources.images", "Images", "AsyncImages", "edit",
           IMAGE_EDIT),
    Method(("audio", "transcriptions"), "openai.resources.audio.transcriptions",
           "Transcriptions", "AsyncTranscriptions", "create", TRANSCRIPTION),
    Method(("audio", "speech"), "openai.resources.audio.speech", "Speech", "AsyncSpeech",
           "create", SPEECH),
)

HELPERS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("chat", "completions"): ("stream",),
    ("responses",): ("stream",),
}
"""Helper methods the wrapper runs with itself as ``self`` so they reach its ``create``."""
