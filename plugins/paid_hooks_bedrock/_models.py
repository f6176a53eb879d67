"""Bedrock model ids -> the model name the price data knows.

A Bedrock ``modelId`` is one of:

* a base model id: ``anthropic.claude-3-5-sonnet-20240620-v1:0``;
* a system-defined (cross-region) inference profile: ``us.anthropic.claude-...``,
  ``eu.``, ``apac.``, ``global.``...;
* the ARN of either: ``arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-...``,
  ``arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-...``;
* an opaque resource ARN (application inference profile, provisioned throughput, custom or
  imported model, prompt, prompt router) that does not name the model.

Normalising unwraps the ARN of a base model or system inference profile and keeps
everything else verbatim. The geographic prefix is KEPT: genai-prices prices ``global.``
profiles differently from regional ones (``us.``/``eu.``/... and plain ids share the
regional price), so dropping it would misprice. Opaque ARNs are returned unchanged: no
price source knows them (the call is ``unpriced``/``unknown_model``) unless a price
override names them.
"""

from __future__ import annotations

__all__ = ["normalize_model_id"]

_UNWRAPPED_RESOURCES = ("foundation-model/", "inference-profile/")


def normalize_model_id(model_id: object) -> str | None:
    """The priceable model name for a Bedrock ``modelId`` (``None`` if there is none)."""
    if not isinstance(model_id, str):
        return None
    model_id = model_id.strip()
    if not model_id:
        return None
    if not model_id.startswith("arn:"):
        return model_id
    parts = model_id.split(":", 5)  # arn:partition:service:region:account:resource
    if len(parts) != 6:
        return model_id
    resource = parts[5]
    for prefix in _UNWRAPPED_RESOURCES:
        if resource.startswith(prefix) and len(resource) > len(prefix):
            return resource[len(prefix):]
    return model_id
