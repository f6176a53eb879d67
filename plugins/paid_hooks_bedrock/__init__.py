"""paid-hooks plugin for AWS Bedrock Runtime through boto3 (``pip install 'paid-hooks[bedrock]'``).

Two ways in:

* ``PaidBedrock(boto3.client("bedrock-runtime"))``: a wrapper that behaves exactly like the
  client and records ``converse``, ``converse_stream``, ``invoke_model`` and
  ``invoke_model_with_response_stream``;
* ``paid_hooks.instrument("bedrock")``: registers handlers in botocore's event system so
  that ``bedrock-runtime`` clients created afterwards are recorded too (see
  :mod:`paid_hooks_bedrock._events`); ``paid_hooks.uninstrument("bedrock")`` removes them.

Calls are recorded under provider ``aws.bedrock`` (priced with genai-prices' ``aws``
data) with the model id normalised by :func:`normalize_model_id`. boto3 is synchronous;
there is no async client to cover.

This module imports nothing from boto3/botocore until it is used, so loading it is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paid_hooks import plugin_kit
from paid_hooks_bedrock._models import normalize_model_id

if TYPE_CHECKING:
    from paid_hooks_bedrock._wrapper import PaidBedrock

__all__ = ["PaidBedrock", "instrument", "normalize_model_id", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidBedrock": "_wrapper"})
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._events")
