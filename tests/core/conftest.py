"""Shared helpers for the core tests: real OpenAI SDK clients on the fake provider."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest
from openai import AsyncOpenAI, OpenAI

from paid_hooks.testing import FakeProviderServer, FakeUsage
from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Is this lead interested?"}]


def expected_cost(usage: FakeUsage, model: str = MODEL, provider_id: str = "openai") -> Decimal:
    """The price of ``usage`` straight from genai-prices, independent of paid-hooks."""
    kwargs = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cache_read_tokens:
        kwargs["cache_read_tokens"] = usage.cache_read_tokens
    result = genai_prices.calc_price(genai_prices.Usage(**kwargs), model, provider_id=provider_id)
    return Decimal(result.total_price)


@pytest.fixture
def client(fake_provider: FakeProviderServer) -> PaidOpenAI:
    return PaidOpenAI(OpenAI(base_url=fake_provider.openai_url, api_key="sk-test-key",
                             max_retries=0))


@pytest.fixture
def aclient(fake_provider: FakeProviderServer) -> PaidAsyncOpenAI:
    return PaidAsyncOpenAI(AsyncOpenAI(base_url=fake_provider.openai_url, api_key="sk-test-key",
                                       max_retries=0))
