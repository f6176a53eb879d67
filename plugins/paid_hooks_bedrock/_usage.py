"""Bedrock usage payloads -> the canonical :class:`paid_hooks.Usage` (cache INCLUDED in input).

Pure functions over plain dicts (what botocore returns); nothing here imports botocore.

Semantics, per source:

* Converse / ConverseStream ``TokenUsage``: ``inputTokens`` EXCLUDES the cache; AWS's
  prompt-caching guide gives total input = ``inputTokens + cacheReadInputTokens +
  cacheWriteInputTokens`` (genai-prices' ``aws`` extractor sums them the same way).
  ``cacheDetails`` splits the writes by TTL (``5m`` / ``1h``).
* InvokeModel with an Anthropic body: Anthropic's own ``usage`` (exclusive ``input_tokens``
  plus ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` and the
  ``cache_creation`` 5m/1h split).
* ``amazon-bedrock-invocationMetrics`` (last chunk of an InvokeModel stream) and the
  ``x-amzn-bedrock-input-token-count`` / ``-output-token-count`` headers: input and output
  counts for any model; cache counts in the metrics are treated like Converse's (beside
  the input, not inside it). Used when the body carries no usage we can read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import number_count

__all__ = [
    "ConverseStreamUsage",
    "InvokeStreamUsage",
    "anthropic_usage",
    "converse_usage",
    "header_usage",
    "invocation_metrics_usage",
    "invoke_body_usage",
    "service_tier",
]


def converse_usage(usage: Any) -> paid_hooks.Usage | None:
    """Converse ``TokenUsage`` (``inputTokens`` excludes cache reads and writes)."""
    if not isinstance(usage, Mapping):
        return None
    uncached = number_count(usage.get("inputTokens"))
    output = number_count(usage.get("outputTokens"))
    if uncached is None and output is None:
        return None
    read = number_count(usage.get("cacheReadInputTokens"))
    write = number_count(usage.get("cacheWriteInputTokens"))
    by_ttl: dict[str, int] = {}
    details = usage.get("cacheDetails")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, Mapping) and detail.get("ttl") in ("5m", "1h"):
                count = number_count(detail.get("inputTokens"))
                if count is not None:
                    by_ttl[detail["ttl"]] = by_ttl.get(detail["ttl"], 0) + count
    if write is None and by_ttl:
        write = sum(by_ttl.values())
    return paid_hooks.Usage(
        input_tokens=(uncached or 0) + (read or 0) + (write or 0),
        output_tokens=output or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_5m_tokens=by_ttl.get("5m"),
        cache_write_1h_tokens=by_ttl.get("1h"),
    )


def anthropic_usage(usage: Any) -> paid_hooks.Usage | None:
    """Anthropic Messages ``usage`` (exclusive ``input_tokens``, cache counts beside it)."""
    if not isinstance(usage, Mapping):
        return None
    uncached = number_count(usage.get("input_tokens"))
    output = number_count(usage.get("output_tokens"))
    if uncached is None and output is None:
        return None
    read = number_count(usage.get("cache_read_input_tokens"))
    write = number_count(usage.get("cache_creation_input_tokens"))
    creation = usage.get("cache_creation")
    write_5m = write_1h = None
    if isinstance(creation, Mapping):
        write_5m = number_count(creation.get("ephemeral_5m_input_tokens"))
        write_1h = number_count(creation.get("ephemeral_1h_input_tokens"))
        if write is None and (write_5m is not None or write_1h is not None):
            write = (write_5m or 0) + (write_1h or 0)
    return paid_hooks.Usage(
        input_tokens=(uncached or 0) + (read or 0) + (write or 0),
        output_tokens=output or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
    )


def invocation_metrics_usage(metrics: Any) -> paid_hooks.Usage | None:
    """``amazon-bedrock-invocationMetrics`` (``inputTokenCount`` excludes the cache)."""
    if not isinstance(metrics, Mapping):
        return None
    uncached = number_count(metrics.get("inputTokenCount"))
    output = number_count(metrics.get("outputTokenCount"))
    if uncached is None and output is None:
        return None
    read = number_count(metrics.get("cacheReadInputTokenCount"))
    write = number_count(metrics.get("cacheWriteInputTokenCount"))
    return paid_hooks.Usage(
        input_tokens=(uncached or 0) + (read or 0) + (write or 0),
        output_tokens=output or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def header_usage(headers: Any) -> paid_hooks.Usage | None:
    """The ``x-amzn-bedrock-input/output-token-count`` response headers (lower-cased keys)."""
    if not isinstance(headers, Mapping):
        return None
    try:
        raw_in = headers.get("x-amzn-bedrock-input-token-count")
        raw_out = headers.get("x-amzn-bedrock-output-token-count")
        if raw_in is None and raw_out is None:
            return None
        return paid_hooks.Usage(input_tokens=int(raw_in or 0), output_tokens=int(raw_out or 0))
    except (TypeError, ValueError):
        return None


def invoke_body_usage(body: bytes, headers: Any) -> paid_hooks.Usage | None:
    """Usage of an InvokeModel response: the Anthropic body if it is one, else the headers."""
    try:
        payload = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, Mapping):
        usage = anthropic_usage(payload.get("usage"))
        if usage is not None:
            return usage
        usage = invocation_metrics_usage(payload.get("amazon-bedrock-invocationMetrics"))
        if usage is not None:
            return usage
    return header_usage(headers)


def service_tier(value: Any) -> str | None:
    """``serviceTier`` as Converse reports it (``{"type": "flex"}``) or as a header string."""
    if isinstance(value, Mapping):
        value = value.get("type")
    return value if isinstance(value, str) and value else None


class ConverseStreamUsage:
    """Reads the ``metadata`` event of a ConverseStream (the only one that carries usage)."""

    __slots__ = ("complete", "service_tier", "usage")

    def __init__(self) -> None:
        self.usage: paid_hooks.Usage | None = None
        self.service_tier: str | None = None
        self.complete = False

    def observe(self, event: Any) -> None:
        metadata = event.get("metadata") if isinstance(event, Mapping) else None
        if not isinstance(metadata, Mapping):
            return
        usage = converse_usage(metadata.get("usage"))
        if usage is not None:
            self.usage = usage
            self.service_tier = service_tier(metadata.get("serviceTier"))
            self.complete = True

    def result(self) -> paid_hooks.Usage | None:
        return self.usage


class InvokeStreamUsage:
    """Reads the ``chunk`` events of an InvokeModelWithResponseStream.

    Anthropic chunks: ``message_start.message.usage`` merged with ``message_delta.usage``
    (later values win); complete once ``message_delta`` arrived. Any model: the last chunk's
    ``amazon-bedrock-invocationMetrics``, used when there is no Anthropic usage.
    """

    __slots__ = ("_anthropic", "_delta_seen", "_metrics", "complete", "service_tier")

    def __init__(self, service_tier: str | None = None) -> None:
        self._anthropic: dict[str, Any] = {}
        self._delta_seen = False
        self._metrics: Mapping[str, Any] | None = None
        self.complete = False
        self.service_tier = service_tier

    def observe(self, event: Any) -> None:
        chunk = event.get("chunk") if isinstance(event, Mapping) else None
        raw = chunk.get("bytes") if isinstance(chunk, Mapping) else None
        if not isinstance(raw, bytes | str) or not raw:
            return
        payload = json.loads(raw)
        if not isinstance(payload, Mapping):
            return
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            usage = message.get("usage") if isinstance(message, Mapping) else None
            if isinstance(usage, Mapping):
                self._anthropic.update(usage)
        elif kind == "message_delta":
            usage = payload.get("usage")
            if isinstance(usage, Mapping):
                self._anthropic.update(usage)
                self._delta_seen = True
        metrics = payload.get("amazon-bedrock-invocationMetrics")
        if isinstance(metrics, Mapping):
            self._metrics = metrics
            self.complete = True

    def result(self) -> paid_hooks.Usage | None:
        if self._delta_seen:
            usage = anthropic_usage(self._anthropic)
            if usage is not None:
                return usage
        return invocation_metrics_usage(self._metrics)
