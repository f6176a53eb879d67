"""Reading the Agents SDK's usage, model names and response ids (no SDK import needed).

Everything here is duck-typed over the SDK's objects and dicts, so it is cheap to import
and safe to call on anything: unreadable input gives ``None``, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import count, field

__all__ = [
    "CAPTURED_BY",
    "FAKE_RESPONSE_ID",
    "OPERATION",
    "PROVIDER",
    "STREAM_USAGE_NOT_REQUESTED",
    "agent_model_name",
    "canonical_usage",
    "is_zero",
    "output_response_id",
    "usage_from_counts",
    "zero_usage_reason",
]

CAPTURED_BY = "openai_agents"
PROVIDER = "openai"
OPERATION = "chat"

FAKE_RESPONSE_ID = "__fake_id__"
"""The id the SDK gives a streamed Chat Completions response (``agents.models.fake_id``)."""

STREAM_USAGE_NOT_REQUESTED = (
    "stream_usage_not_requested: set ModelSettings(include_usage=True)"
)
"""Why a streamed Chat Completions call has no usage: against a base_url that is not
api.openai.com the SDK does not send ``stream_options.include_usage`` and then reports
ZERO tokens (not ``None``) with the fake response id."""


def canonical_usage(usage: Any) -> paid_hooks.Usage | None:
    """One model response's usage (``agents.Usage`` or a span's usage dict) -> ``Usage``.

    The SDK normalises Chat Completions and Responses usage to the Responses shape:
    ``input_tokens`` includes cached tokens, ``output_tokens`` includes reasoning, so the
    counts are already canonical. The SDK fills absent details with 0; a cache write of
    0 is read as "not reported" (OpenAI does not report writes), cached and reasoning
    counts are kept as reported. ``None`` when neither token count is present.
    """
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        raw_in, raw_out = usage.get("input_tokens"), usage.get("output_tokens")
        in_details = usage.get("input_tokens_details")
        out_details = usage.get("output_tokens_details")
    else:  # agents.Usage: plain attributes
        raw_in = getattr(usage, "input_tokens", None)
        raw_out = getattr(usage, "output_tokens", None)
        in_details = getattr(usage, "input_tokens_details", None)
        out_details = getattr(usage, "output_tokens_details", None)
    return usage_from_counts(raw_in, raw_out, field(in_details, "cached_tokens"),
                             field(in_details, "cache_write_tokens"),
                             field(out_details, "reasoning_tokens"))


def usage_from_counts(raw_in: Any, raw_out: Any, cached: Any, cache_write: Any,
                      reasoning: Any) -> paid_hooks.Usage | None:
    """The ``Usage`` of :func:`canonical_usage` from the five counts as read (any type;
    ``None`` for absent). ``None`` when neither token count is present."""
    # count() for anything but the usual int (exact same result, one call less).
    input_tokens = raw_in if type(raw_in) is int else count(raw_in)
    output_tokens = raw_out if type(raw_out) is int else count(raw_out)
    if input_tokens is None and output_tokens is None:
        return None
    cache_write = cache_write if type(cache_write) is int else count(cache_write)
    return paid_hooks.Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        cache_read_tokens=cached if type(cached) is int else count(cached),
        cache_write_tokens=cache_write or None,
        reasoning_tokens=reasoning if type(reasoning) is int else count(reasoning),
    )


def is_zero(usage: paid_hooks.Usage) -> bool:
    """True for the SDK's placeholder usage: no input and no output tokens.

    A model call always reads some input, so zero input means the usage never arrived
    (the SDK substitutes zeros for a missing usage block).
    """
    return usage.input_tokens == 0 and usage.output_tokens == 0


def zero_usage_reason(*, streamed: bool | None, include_usage: bool | None) -> str:
    """The ``usage_unknown`` reason for a response whose usage came back as zeros.

    ``streamed`` is None when unknown: a streamed Chat Completions call is then by far
    the likeliest cause (the SDK's non-streamed path keeps the provider's usage).
    """
    if streamed is False:
        return "not_reported"
    if include_usage:
        return "stream_closed_early"
    return STREAM_USAGE_NOT_REQUESTED


def agent_model_name(model: Any) -> str | None:
    """The model name of ``agent.model``: a ``str``, a ``Model`` with ``.model``, or None.

    ``None`` means the SDK's default model (``OPENAI_DEFAULT_MODEL``), resolved here the
    way the SDK resolves it. Never ``str(model)`` of an object (that is a repr).
    """
    if isinstance(model, str):
        return model or None
    if model is None:
        try:
            from agents.models import get_default_model

            return str(get_default_model())
        except Exception:
            return None
    name = getattr(model, "model", None)
    return name if isinstance(name, str) and name else None


def output_response_id(output: Iterable[Any] | None) -> tuple[str | None, str | None]:
    """(response id, model) from the ``provider_data`` the Chat Completions model puts
    on each output item (``{"model": ..., "response_id": "chatcmpl-..."}``)."""
    for item in output or ():
        data = field(item, "provider_data")
        if isinstance(data, dict):
            rid = data.get("response_id")
            if isinstance(rid, str) and rid and rid != FAKE_RESPONSE_ID:
                model = data.get("model")
                return rid, model if isinstance(model, str) and model else None
    return None, None
