"""Pricing: exact decimals, overrides from TOML, the price_call hook, price context."""

from __future__ import annotations

import time
from decimal import Decimal

import genai_prices
import pytest

import paid_hooks
from paid_hooks import Price, Unpriced, Usage, hookimpl, paid_tracing, signal
from paid_hooks._plugins import get_plugin_manager
from paid_hooks.pricing import load_price_overrides
from paid_hooks.testing import FakeReply, FakeUsage, temporary_ledger

from .conftest import MESSAGES, MODEL


def test_override_file_prices_a_private_model(tmp_path, fake_provider, client):
    overrides = tmp_path / "prices.toml"
    overrides.write_text('''
[[price]]
model = "ft:gpt-4o-mini:acme*"
provider = "openai"
input_mtok = "0.30"
output_mtok = "1.20"
cache_read_mtok = "0.15"
''')
    fake_provider.queue(FakeReply(usage=FakeUsage(10_000, 2_000, cache_read_tokens=4_000),
                                  model="ft:gpt-4o-mini:acme:sdr:1"))
    with temporary_ledger(tmp_path, price_overrides=overrides) as ledger:
        with paid_tracing("acme", external_agent_id="sdr"):
            client.chat.completions.create(model="ft:gpt-4o-mini:acme:sdr:1", messages=MESSAGES)
            signal("done", enable_cost_tracing=True)
        [call] = ledger.calls()
    # 6,000 plain input at 0.30, 4,000 cached at 0.15, 2,000 output at 1.20 (per MTok)
    assert Decimal(call["cost_usd"]) == Decimal("0.0018") + Decimal("0.0006") + Decimal("0.0024")
    assert call["price_source"] == "overrides"


def test_override_file_errors_name_the_entry(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[price]]\nmodel = "x"\ninput_mtok = 0.3\n')
    with pytest.raises(ValueError, match=r"price\[0\]\.input_mtok.*not floats"):
        load_price_overrides(bad)
    missing = tmp_path / "missing.toml"
    missing.write_text('[[price]]\ninput_mtok = "1"\n')
    with pytest.raises(ValueError, match="'model' is required"):
        load_price_overrides(missing)


class NegotiatedRate:
    """A user plugin: acme pays a flat 0.001 USD per call on gpt-4o-mini."""

    @hookimpl
    def price_call(self, call):
        if call.model and call.model.startswith("gpt-4o-mini"):
            return Price(Decimal("0.001"), price_source="acme-contract")
        if call.model == "blocked-model":
            return Unpriced("contract_excludes_model")
        return None


def test_price_hook_answers_first_and_can_refuse(paid_ledger, fake_provider, client):
    pm = get_plugin_manager()
    pm.register(NegotiatedRate(), name="negotiated")
    try:
        fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)),
                            FakeReply(usage=FakeUsage(1000, 100), model="blocked-model"),
                            FakeReply(usage=FakeUsage(1000, 100), model="gpt-4o"))
        with paid_tracing("acme", external_agent_id="sdr"):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            client.chat.completions.create(model="blocked-model", messages=MESSAGES)
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        rows = {c["model"]: c for c in paid_ledger.calls()}
    finally:
        pm.unregister(name="negotiated")
    assert rows[MODEL]["cost_usd"] == "0.001" and rows[MODEL]["price_source"] == "acme-contract"
    assert rows["blocked-model"]["cost_status"] == "unpriced"
    assert rows["blocked-model"]["cost_reason"] == "contract_excludes_model"
    gpt4o = genai_prices.calc_price(genai_prices.Usage(input_tokens=1000, output_tokens=100),
                                    "gpt-4o", provider_id="openai").total_price
    assert Decimal(rows["gpt-4o"]["cost_usd"]) == gpt4o
    assert rows["gpt-4o"]["price_source"].startswith("genai-prices ")


def test_a_failing_price_plugin_never_breaks_the_call(paid_ledger, fake_provider, client):
    class Broken:
        @hookimpl
        def price_call(self, call):
            raise RuntimeError("price service down")

    pm = get_plugin_manager()
    pm.register(Broken(), name="broken")
    try:
        fake_provider.queue(FakeReply(usage=FakeUsage(10, 1)))
        with paid_tracing("acme", external_agent_id="sdr"):
            reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert reply.choices[0].message.content
        [row] = paid_ledger.calls()
    finally:
        pm.unregister(name="broken")
    assert row["cost_status"] == "unpriced" and row["cost_reason"] == "price_error:RuntimeError"


def test_builtin_pricing_uses_the_price_context_and_cache_splits():
    builtin = get_plugin_manager().get_plugin("paid_hooks.pricing")

    def price(usage: Usage, model: str, provider: str = "anthropic", **kw) -> Decimal:
        now = time.time_ns()  # prices are dated: price as of today
        call = paid_hooks.AICall(provider, "chat", model, model, usage, "test", now, now, **kw)
        answer = builtin.price_call(call=call)
        assert isinstance(answer, Price)
        return answer.amount

    five_min = Usage(input_tokens=1000, output_tokens=0, cache_write_tokens=500,
                     cache_write_5m_tokens=500)
    one_hour = Usage(input_tokens=1000, output_tokens=0, cache_write_tokens=500,
                     cache_write_1h_tokens=500)
    assert price(five_min, "claude-sonnet-4-5") == Decimal("0.003375")
    assert price(one_hour, "claude-sonnet-4-5") == Decimal("0.0045")
    plain = Usage(input_tokens=1000, output_tokens=100)
    batch = price(plain, "gpt-4o-mini", "openai", batch=True)
    standard = price(plain, "gpt-4o-mini", "openai")
    assert batch == standard / 2


def test_units_nobody_prices_make_the_call_unpriced_not_free():
    builtin = get_plugin_manager().get_plugin("paid_hooks.pricing")
    call = paid_hooks.AICall("openai", "image_generation", "dall-e-3", "dall-e-3",
                             Usage(units={"images": 2}), "test", 0, 1)
    answer = builtin.price_call(call=call)
    assert answer == Unpriced("no_price_for_units:images")
