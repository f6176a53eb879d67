"""``PaidLlamaIndexOpenAI``: LlamaIndex's ``OpenAI`` LLM with streamed usage turned on.

llama-index-llms-openai never sends ``stream_options``, so OpenAI streams carry no
usage and cannot be priced (run-llama/llama_index#16721). This subclass adds
``stream_options={"include_usage": True}`` to streaming requests only (OpenAI rejects it
on non-streaming ones); an explicit ``stream_options`` of the caller is kept as given.
Everything else is the parent class unchanged.
"""

from __future__ import annotations

from typing import Any

from llama_index.llms.openai import OpenAI

__all__ = ["PaidLlamaIndexOpenAI"]


class PaidLlamaIndexOpenAI(OpenAI):
    """Drop-in ``llama_index.llms.openai.OpenAI`` whose streamed calls report usage."""

    def _get_model_kwargs(self, **kwargs: Any) -> dict[str, Any]:
        all_kwargs: dict[str, Any] = super()._get_model_kwargs(**kwargs)
        if all_kwargs.get("stream"):
            options = dict(all_kwargs.get("stream_options") or {})
            options.setdefault("include_usage", True)
            all_kwargs["stream_options"] = options
        return all_kwargs
