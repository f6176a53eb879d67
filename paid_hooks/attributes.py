"""Span attribute names: the OpenTelemetry GenAI conventions plus this project's ``paid.*``.

The GenAI constants in ``opentelemetry-semantic-conventions`` are marked as moved, so the
names are defined here. Cost attributes follow the draft convention
(``gen_ai.usage.cost.*``); ``paid.*`` attributes are always written.
"""

from __future__ import annotations

__all__ = [
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STREAM",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_COST_AMOUNT",
    "GEN_AI_USAGE_COST_CURRENCY",
    "GEN_AI_USAGE_COST_SOURCE",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "PAID_AGENT_ID",
    "PAID_CAPTURED_BY",
    "PAID_COST_REASON",
    "PAID_COST_STATUS",
    "PAID_COST_USD",
    "PAID_CUSTOMER_ID",
    "PAID_PRICE_SOURCE",
    "PAID_SIGNAL_COST_TRACING",
    "PAID_SIGNAL_EVENT_NAME",
    "PAID_SIGNAL_IDEMPOTENCY_KEY",
    "PAID_SIGNAL_REJECTED",
    "PAID_USAGE_JSON",
    "SCOPE_NAME",
]

SCOPE_NAME = "paid_hooks"
"""Instrumentation scope of every span this library creates."""

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"

PAID_CUSTOMER_ID = "paid.external_customer_id"
PAID_AGENT_ID = "paid.external_agent_id"
PAID_CAPTURED_BY = "paid.captured_by"
PAID_COST_USD = "paid.cost.usd"
"""Exact decimal cost as a string (the float ``gen_ai.usage.cost.amount`` is for dashboards)."""
PAID_COST_STATUS = "paid.cost.status"
PAID_COST_REASON = "paid.cost.reason"
PAID_PRICE_SOURCE = "paid.price.source"
PAID_USAGE_JSON = "paid.usage"
"""The full normalised usage as JSON, so a cost can be recomputed later."""
PAID_SIGNAL_EVENT_NAME = "paid.signal.event_name"
PAID_SIGNAL_COST_TRACING = "paid.signal.enable_cost_tracing"
PAID_SIGNAL_REJECTED = "paid.signal.cost_tracing_rejected"
PAID_SIGNAL_IDEMPOTENCY_KEY = "paid.signal.idempotency_key"
