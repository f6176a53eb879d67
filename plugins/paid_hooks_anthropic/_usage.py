"""Anthropic ``usage`` -> the canonical :class:`paid_hooks.Usage` (normalised here, once).

Anthropic's counts are ADDITIVE where the canonical form is inclusive:

* ``input_tokens`` EXCLUDES cache reads and writes, so the canonical input is
  ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``;
* ``output_tokens`` already INCLUDES thinking (the SDK documents it as "the inclusive,
  authoritative total used for billing"; ``output_tokens_details.thinking_tokens`` is
  "always <= output_tokens"), so thinking only becomes ``reasoning_tokens``, a subset;
* ``server_tool_use.web_search_requests`` is billed per search: ``units["web_searches"]``
  (web fetches carry no extra charge and are not a unit);
* beta ``usage.iterations`` entries of type ``compaction`` are billed but are NOT in the
  top-level counts (SDK docs), so they are added to the totals here.

Streams split usage over ``message_start`` and ``message_delta``; :class:`StreamUsage`
merges the two with later values winning, never summing.
"""

from __future__ import annotations

from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import count, field, field_reader

__all__ = ["PROVIDER", "StreamUsage", "message_usage", "service_tier"]

PROVIDER = "anthropic"

_MERGED_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "output_tokens_details",
    "server_tool_use",
    "service_tier",
    "iterations",
)


_MERGED = field_reader(*_MERGED_FIELDS)


def _plus(a: int | None, b: int | None) -> int | None:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


def _compaction_counts(iterations: Any) -> dict[str, int | None]:
    """Sum of the billed tokens of beta ``compaction`` iterations (not in the top level)."""
    totals: dict[str, int | None] = {"input": None, "output": None, "read": None,
                                     "write": None, "5m": None, "1h": None}
    if not isinstance(iterations, (list, tuple)):
        return totals
    for item in iterations:
        if field(item, "type") != "compaction":
            continue
        creation = field(item, "cache_creation")
        for key, value in (("input", field(item, "input_tokens")),
                           ("output", field(item, "output_tokens")),
                           ("read", field(item, "cache_read_input_tokens")),
                           ("write", field(item, "cache_creation_input_tokens")),
                           ("5m", field(creation, "ephemeral_5m_input_tokens")),
                           ("1h", field(creation, "ephemeral_1h_input_tokens"))):
            totals[key] = _plus(totals[key], count(value))
    return totals


_USAGE = field_reader("input_tokens", "output_tokens", "cache_read_input_tokens",
                     "cache_creation_input_tokens", "cache_creation", "iterations",
                     "output_tokens_details", "server_tool_use")
_CREATION = field_reader("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")


def _count(value: Any) -> int | None:
    return value if type(value) is int else count(value)


def message_usage(usage: Any) -> paid_hooks.Usage | None:
    """Normalise one Anthropic ``usage`` (SDK object or dict); ``None`` if nothing reported."""
    if usage is None:
        return None
    (plain_input, output, cache_read, cache_write, creation, iterations, output_details,
     server_tools) = _USAGE(usage)
    plain_input = _count(plain_input)
    output = _count(output)
    if plain_input is None and output is None:
        return None
    cache_read = _count(cache_read)
    cache_write = _count(cache_write)
    write_5m, write_1h = _CREATION(creation)
    write_5m = _count(write_5m)
    write_1h = _count(write_1h)

    if iterations is not None:
        extra = _compaction_counts(iterations)
        plain_input = _plus(plain_input, extra["input"])
        output = _plus(output, extra["output"])
        cache_read = _plus(cache_read, extra["read"])
        cache_write = _plus(cache_write, extra["write"])
        write_5m = _plus(write_5m, extra["5m"])
        write_1h = _plus(write_1h, extra["1h"])
    if cache_write is None and (write_5m is not None or write_1h is not None):
        cache_write = (write_5m or 0) + (write_1h or 0)

    thinking = _count(field(output_details, "thinking_tokens"))
    searches = _count(field(server_tools, "web_search_requests"))
    units = {"web_searches": searches} if searches else {}
    return paid_hooks.Usage(
        input_tokens=(plain_input or 0) + (cache_write or 0) + (cache_read or 0),
        output_tokens=output or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=thinking,
        units=units,
    )


def service_tier(usage: Any) -> str | None:
    tier = field(usage, "service_tier")
    return tier if isinstance(tier, str) else None


class StreamUsage:
    """The usage of one stream, merged from its events: later reported values win."""

    __slots__ = ("fields", "final_seen")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.final_seen = False
        """True once a ``message_delta`` (which carries the final output count) arrived."""

    def merge(self, usage: Any, *, final: bool) -> None:
        if usage is None:
            return
        fields = self.fields
        for name, value in zip(_MERGED_FIELDS, _MERGED(usage), strict=True):
            if value is not None:
                fields[name] = value
        if final:
            self.final_seen = True

    def usage(self) -> paid_hooks.Usage | None:
        return message_usage(self.fields)

    def service_tier(self) -> str | None:
        return service_tier(self.fields)
