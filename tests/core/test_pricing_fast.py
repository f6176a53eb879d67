"""The builtin price source's fast path gives EXACTLY what genai_prices.calc_price gives.

``BuiltinPricing`` caches the usage-independent part of genai-prices' calculation per
model, price context and day, and redoes only the per-usage arithmetic. These tests
compare its answer with the plain ``calc_price`` path (same instance, fast path off) over
every model genai-prices knows for our providers, random usages, dates, batch and
service tiers: the same Price (the same decimal string, exponent included) or the same
Unpriced reason.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import data_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paid_hooks import AICall, Price, Unpriced, Usage
from paid_hooks.pricing import GENAI_PRICES_PROVIDER_IDS, BuiltinPricing

_OURS_BY_GENAI = {}
for _ours, _theirs in GENAI_PRICES_PROVIDER_IDS.items():
    _OURS_BY_GENAI.setdefault(_theirs, _ours)


def _models() -> list[tuple[str, str]]:
    """(OpenTelemetry provider name, model id) for every model of a provider we map."""
    out = []
    for provider in data_snapshot.get_snapshot().providers:
        ours = _OURS_BY_GENAI.get(provider.id)
        if ours is not None:
            out.extend((ours, model.id) for model in provider.models)
    return sorted(out)


MODELS = _models()


@pytest.fixture(scope="module")
def pricers() -> tuple[BuiltinPricing, BuiltinPricing]:
    fast = BuiltinPricing()
    fast.load()
    slow = BuiltinPricing()
    slow.load()
    slow._fast = None
    assert fast._fast is not None, "the fast path did not load with this genai-prices"
    return fast, slow


def _same(a: Price | Unpriced | None, b: Price | Unpriced | None) -> bool:
    if isinstance(a, Price) and isinstance(b, Price):
        return str(a.amount) == str(b.amount) and a.price_source == b.price_source
    return a == b


@st.composite
def usages(draw: Any) -> Usage:
    small = st.integers(min_value=0, max_value=3_000_000)
    maybe = st.one_of(st.none(), small)
    input_tokens = draw(small)
    cache_read = draw(st.one_of(st.none(), st.integers(0, input_tokens)))
    cache_write = draw(st.one_of(st.none(), st.integers(0, max(0, input_tokens - (cache_read
                                                                                   or 0)))))
    split = draw(st.sampled_from(["none", "5m", "1h", "both"]))
    w5 = w1 = None
    if cache_write is not None and split != "none":
        if split == "5m":
            w5 = cache_write
        elif split == "1h":
            w1 = cache_write
        else:
            w1 = draw(st.integers(0, cache_write))
            w5 = cache_write - w1
    output_tokens = draw(small)
    reasoning = draw(st.one_of(st.none(), st.integers(0, output_tokens)))
    audio_in = draw(st.one_of(st.none(), st.integers(0, input_tokens)))
    return Usage(
        input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read,
        cache_write_tokens=cache_write, cache_write_5m_tokens=w5, cache_write_1h_tokens=w1,
        reasoning_tokens=reasoning, input_audio_tokens=audio_in,
        output_audio_tokens=draw(maybe) if draw(st.booleans()) else None,
        input_image_tokens=draw(st.one_of(st.none(), st.integers(0, input_tokens))),
    )


_2023 = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp() * 1e9)
_2028 = int(datetime(2028, 1, 1, tzinfo=UTC).timestamp() * 1e9)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), usage=usages(),
       start=st.integers(_2023, _2028),
       tier=st.sampled_from([None, None, "flex", "priority", "default", "batch"]),
       spelling=st.sampled_from(["id", "upper", "dated"]))
def test_fast_path_equals_calc_price(pricers, model, usage, start, tier, spelling):
    fast, slow = pricers
    provider, model_id = model
    name = {"id": model_id, "upper": model_id.upper(), "dated": f"{model_id}-20250101"}[spelling]
    call = AICall(provider, "chat", name, name, usage, "test", start, start + 1,
                  service_tier=None if tier == "batch" else tier, batch=tier == "batch")
    for _ in range(2):  # the second answer comes from the caches
        assert _same(fast.price_call(call), slow.price_call(call))


def test_every_model_today_with_a_typical_usage(pricers):
    fast, slow = pricers
    now = time.time_ns()
    usage = Usage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000,
                  reasoning_tokens=100)
    priced = 0
    for provider, model_id in MODELS:
        call = AICall(provider, "chat", model_id, model_id, usage, "test", now, now)
        answer = fast.price_call(call)
        assert _same(answer, slow.price_call(call)), (provider, model_id)
        priced += isinstance(answer, Price)
    assert priced > 500  # the comparison covered real prices, not only refusals


def test_matches_genai_prices_directly_including_the_exponent(pricers):
    fast, _ = pricers
    start = int(datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp() * 1e9)
    call = AICall("anthropic", "chat", "claude-sonnet-4-5", "claude-sonnet-4-5",
                  Usage(input_tokens=1000, output_tokens=0, cache_write_tokens=500,
                        cache_write_5m_tokens=500), "test", start, start)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, output_tokens=0, cache_write_tokens=500,
                           cache_write_5m_tokens=500),
        "claude-sonnet-4-5", provider_id="anthropic",
        genai_request_timestamp=datetime.fromtimestamp(start / 1e9, tz=UTC)).total_price
    answer = fast.price_call(call)
    assert isinstance(answer, Price)
    assert str(answer.amount) == str(expected) and answer.amount == Decimal("0.003375")


def test_time_of_day_prices_are_left_to_genai_prices(pricers):
    """deepseek's off-peak prices depend on the hour: never cached by day."""
    fast, slow = pricers
    usage = Usage(input_tokens=100_000, output_tokens=10_000)
    answers = set()
    for hour in (2, 10, 17, 20):
        start = int(datetime(2025, 3, 1, hour, 30, tzinfo=UTC).timestamp() * 1e9)
        call = AICall("deepseek", "chat", "deepseek-chat", "deepseek-chat", usage, "test",
                      start, start)
        answer = fast.price_call(call)
        assert _same(answer, slow.price_call(call))
        assert isinstance(answer, Price)
        answers.add(answer.amount)
    assert len(answers) > 1  # the hour did change the price


def test_unknown_models_and_bad_usage_answer_like_calc_price(pricers):
    fast, slow = pricers
    now = time.time_ns()
    cases = [
        AICall("openai", "chat", "no-such-model-xyz", None, Usage(input_tokens=1), "t", now, now),
        AICall("openai", "chat", "gpt-4o-mini", None,
               Usage(input_tokens=10, cache_read_tokens=50), "t", now, now),  # cache > input
        AICall("mystery", "chat", "gpt-4o-mini", None, Usage(input_tokens=10), "t", now, now),
        AICall("openai", "chat", "gpt-4o-mini", None,
               Usage(input_tokens=10, units={"web_searches": 2}), "t", now, now),
        AICall("openai", "chat", "gpt-4o-mini", None,
               Usage(input_tokens=10, units={"web_searches": Decimal("1.5")}), "t", now, now),
    ]
    for call in cases:
        for _ in range(2):
            assert _same(fast.price_call(call), slow.price_call(call)), call
    assert fast.price_call(cases[0]) == Unpriced("unknown_model")


def test_compiled_plans_are_used_and_equal_calc_price(pricers):
    """A usage reporting every priced count is priced by the plan's compiled function."""
    fast, slow = pricers
    now = time.time_ns()
    usage = Usage(input_tokens=2_345_678, output_tokens=98_765, cache_read_tokens=300_000,
                  cache_write_tokens=40_000, cache_write_5m_tokens=30_000,
                  cache_write_1h_tokens=10_000, reasoning_tokens=5_000,
                  input_audio_tokens=7_000, output_audio_tokens=600, input_image_tokens=900,
                  output_image_tokens=80)
    compiled = 0
    for provider, model_id in MODELS:
        call = AICall(provider, "chat", model_id, model_id, usage, "test", now, now)
        for _ in range(2):
            assert _same(fast.price_call(call), slow.price_call(call)), (provider, model_id)
    for plan in fast._fast._plans.values():
        compiled += sum(1 for f in getattr(plan, "compiled", {}).values()
                        if getattr(f, "__name__", None) == "priced")
    assert compiled > 300  # the comparison covered the compiled functions of most plans
