"""OpenAI Agents SDK plugin: the run hook, the tracing processor, and both with the
OpenAI provider plugin, driving the real SDK against the fake provider.

Every test swaps in a fresh Agents trace provider with no processors (so nothing is
exported to OpenAI's backend) and restores the application's provider afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIProvider,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
)
from agents.tracing import (
    Span,
    Trace,
    TracingProcessor,
    generation_span,
    get_trace_provider,
    set_trace_processors,
    set_trace_provider,
    task_span,
    trace,
    turn_span,
)
from agents.tracing.provider import DefaultTraceProvider
from openai import AsyncOpenAI

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks_openai_agents import PaidOpenAIAgentsHook, tracing_processor

pytestmark = pytest.mark.usefixtures("agents_tracing")  # see conftest.py

SECRET = "sk-agents-test-SECRET-4242"
MINI = "gpt-4o-mini"
TRAP = "stream_usage_not_requested: set ModelSettings(include_usage=True)"
USAGE = FakeUsage(1200, 300, cache_read_tokens=200, reasoning_tokens=50)


def expected_cost(usage: FakeUsage, model: str = MINI) -> Decimal:
    """The price of ``usage`` straight from genai-prices, independent of paid-hooks."""
    kwargs: dict[str, int] = {"input_tokens": usage.input_tokens,
                              "output_tokens": usage.output_tokens}
    if usage.cache_read_tokens:
        kwargs["cache_read_tokens"] = usage.cache_read_tokens
    price = genai_prices.calc_price(genai_prices.Usage(**kwargs), model, provider_id="openai")
    return Decimal(price.total_price)


def assert_priced(row: dict[str, Any], usage: FakeUsage, model: str = MINI) -> None:
    assert row["cost_status"] == "priced", row
    assert row["model"] == model
    assert row["input_tokens"] == usage.input_tokens
    assert row["output_tokens"] == usage.output_tokens
    assert row["cache_read_tokens"] == usage.cache_read_tokens
    assert row["reasoning_tokens"] == usage.reasoning_tokens
    assert Decimal(row["cost_usd"]) == expected_cost(usage, model)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def client(fake_provider: FakeProviderServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=fake_provider.openai_url, api_key=SECRET, max_retries=0)


def chat_agent(client: AsyncOpenAI, *, model: str = MINI, name: str = "assistant",
               include_usage: bool | None = None) -> Agent[Any]:
    return Agent(name=name, instructions="Answer briefly.",
                 model=OpenAIChatCompletionsModel(model=model, openai_client=client),
                 model_settings=ModelSettings(include_usage=include_usage))


def responses_agent(client: AsyncOpenAI, *, model: str = MINI) -> Agent[Any]:
    return Agent(name="assistant", instructions="Answer briefly.",
                 model=OpenAIResponsesModel(model=model, openai_client=client))


async def run_streamed(agent: Agent[Any], text: str, **kwargs: Any) -> Any:
    result = Runner.run_streamed(agent, text, **kwargs)
    async for _ in result.stream_events():
        pass
    return result


def layers(*names: str) -> None:
    """Activate the global layers in ``names`` ("processor", "provider")."""
    if "processor" in names:
        assert "openai_agents" in paid_hooks.instrument("openai_agents")
    if "provider" in names:
        assert "openai" in paid_hooks.instrument("openai")


# -- the run hook ---------------------------------------------------------------------------


async def test_hook_run_records_each_call_priced_under_the_agent_model(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        result = await Runner.run(chat_agent(client), "Summarise the ticket.",
                                  hooks=PaidOpenAIAgentsHook())
        signal("ticket_summarised", enable_cost_tracing=True)
    assert result.final_output == FakeReply().text
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)
    assert row["captured_by"] == "openai_agents"
    assert row["provider"] == "openai"
    assert row["response_id"] == fake_provider.exchanges[0].response_id
    assert row["response_id"].startswith("chatcmpl-")
    assert row["streaming"] == 0
    assert row["external_customer_id"] == "acme"
    [sig] = paid_ledger.signals()
    assert sig["ai_calls"] == 1 and Decimal(sig["cost_usd"]) == expected_cost(USAGE)


def test_hook_run_sync(paid_ledger: LedgerView, fake_provider: FakeProviderServer,
                       client: AsyncOpenAI) -> None:
    usage = FakeUsage(800, 120, cache_read_tokens=0, reasoning_tokens=0)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="support"):
        Runner.run_sync(chat_agent(client), "Hello", hooks=PaidOpenAIAgentsHook())
        signal("done", enable_cost_tracing=True)
    [row] = paid_ledger.calls()
    assert_priced(row, usage)
    assert row["external_customer_id"] == "acme"


async def test_hook_run_streamed_with_include_usage(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await run_streamed(chat_agent(client, include_usage=True), "Hi",
                           hooks=PaidOpenAIAgentsHook())
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)
    assert row["streaming"] == 1
    assert row["response_id"] == fake_provider.exchanges[0].response_id


async def test_hook_stream_zero_usage_trap_is_usage_unknown_not_zero(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    """Chat Completions model + stream + non-OpenAI base_url: the SDK reports ZEROS."""
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        result = await run_streamed(chat_agent(client), "Hi", hooks=PaidOpenAIAgentsHook())
    assert result.context_wrapper.usage.input_tokens == 0  # the SDK's own zeros
    assert "stream_options" not in fake_provider.exchanges[0].request_json
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == TRAP
    assert row["input_tokens"] is None and row["output_tokens"] is None
    assert row["cost_usd"] is None
    assert row["response_id"] == fake_provider.exchanges[0].response_id


async def test_hook_stream_cut_short_is_usage_unknown(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 200, cut_stream_after=3))
    with paid_tracing("acme", external_agent_id="support"):
        await run_streamed(chat_agent(client, include_usage=True), "Hi",
                           hooks=PaidOpenAIAgentsHook())
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


async def test_hook_reads_the_response_on_the_pipeline_worker(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI,
        reader_threads: Any) -> None:
    """on_llm_end only hands the response over: it is read on the pipeline worker (the
    run does not wait for it), and a response that cannot be read is recorded as
    ``unreadable_response`` without anything raising into the run."""
    from agents import ModelResponse, RunContextWrapper
    from agents.usage import Usage as AgentsUsage

    from paid_hooks_openai_agents import _hook

    readers = reader_threads(_hook, "_response_reading")

    class Unreadable:
        response_id = None

        @property
        def output(self) -> Any:
            raise RuntimeError("not readable")

    hook = PaidOpenAIAgentsHook()
    agent = chat_agent(client)
    context: RunContextWrapper[Any] = RunContextWrapper(context=None)
    with paid_tracing("acme", external_agent_id="support"):
        for response in (ModelResponse(output=[], usage=AgentsUsage(
                requests=1, input_tokens=USAGE.input_tokens,
                output_tokens=USAGE.output_tokens), response_id="resp_direct"),
                         Unreadable()):
            await hook.on_llm_start(context, agent, None, [])
            await hook.on_llm_end(context, agent, response)
        paid_hooks.flush(10)
    assert readers == ["paid-hooks-pipeline"] * 2
    rows = {row["response_id"]: row for row in paid_ledger.calls()}
    assert rows["resp_direct"]["input_tokens"] == USAGE.input_tokens
    assert rows["resp_direct"]["cost_status"] == "priced"
    unreadable = rows[None]
    assert (unreadable["cost_status"], unreadable["cost_reason"]) == (
        "usage_unknown", "unreadable_response")


@pytest.mark.parametrize("streamed", [False, True])
async def test_hook_responses_model(paid_ledger: LedgerView, fake_provider: FakeProviderServer,
                                    client: AsyncOpenAI, streamed: bool) -> None:
    fake_provider.queue(FakeReply(usage=USAGE))
    agent = responses_agent(client, model="gpt-4o")
    with paid_tracing("acme", external_agent_id="support"):
        if streamed:
            await run_streamed(agent, "Hi", hooks=PaidOpenAIAgentsHook())
        else:
            await Runner.run(agent, "Hi", hooks=PaidOpenAIAgentsHook())
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, "gpt-4o")
    assert row["response_id"] == fake_provider.exchanges[0].response_id
    assert row["response_id"].startswith("resp_")


async def test_hook_string_model_and_run_config_override(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    """``agent.model`` as a str; RunConfig(model=...) overriding it is priced as sent."""
    provider = OpenAIProvider(openai_client=client, use_responses=False)
    agent = Agent(name="assistant", model="gpt-4o")
    first, second = FakeUsage(500, 50), FakeUsage(700, 70)
    fake_provider.queue(FakeReply(usage=first), FakeReply(usage=second))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(agent, "Hi", hooks=PaidOpenAIAgentsHook(),
                         run_config=RunConfig(model_provider=provider))
        await Runner.run(agent, "Hi", hooks=PaidOpenAIAgentsHook(),
                         run_config=RunConfig(model_provider=provider, model=MINI))
    assert [e.request_json["model"] for e in fake_provider.exchanges] == ["gpt-4o", MINI]
    by_id = {r["response_id"]: r for r in paid_ledger.calls()}
    one, two = (by_id[e.response_id] for e in fake_provider.exchanges)
    assert one["model"] == "gpt-4o"
    assert Decimal(one["cost_usd"]) == expected_cost(first, "gpt-4o")
    assert two["model"] == MINI
    assert Decimal(two["cost_usd"]) == expected_cost(second, MINI)


async def test_hook_alone_cannot_see_a_failed_call(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    """RunHooks has no error callback: the SDK's exception reaches the caller unchanged
    and the hook alone records nothing (the provider billed nothing). See the README."""
    fake_provider.queue(FakeReply(status=429, error_message="slow down"))
    hook = PaidOpenAIAgentsHook()
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.RateLimitError, match="slow down"):
        await Runner.run(chat_agent(client), "Hi", hooks=hook)
    assert paid_ledger.calls() == []
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(chat_agent(client), "Again", hooks=hook)
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)


# -- the tracing processor (global path) ----------------------------------------------------


async def test_processor_records_model_spans(paid_ledger: LedgerView,
                                             fake_provider: FakeProviderServer,
                                             client: AsyncOpenAI) -> None:
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(chat_agent(client), "Hi")
        signal("done", enable_cost_tracing=True)
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)
    assert row["captured_by"] == "openai_agents"
    assert row["response_id"] is None  # a generation span carries no response id
    assert row["external_customer_id"] == "acme"
    [sig] = paid_ledger.signals()
    assert Decimal(sig["cost_usd"]) == expected_cost(USAGE)


def test_processor_run_sync(paid_ledger: LedgerView, fake_provider: FakeProviderServer,
                            client: AsyncOpenAI) -> None:
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        Runner.run_sync(chat_agent(client), "Hi")
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)
    assert row["external_customer_id"] == "acme"


@pytest.mark.parametrize("sensitive", [True, False])
async def test_processor_streamed(paid_ledger: LedgerView, fake_provider: FakeProviderServer,
                                  client: AsyncOpenAI, sensitive: bool) -> None:
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE))
    config = RunConfig(trace_include_sensitive_data=sensitive)
    with paid_tracing("acme", external_agent_id="support"):
        await run_streamed(chat_agent(client, include_usage=True), "Hi", run_config=config)
        await run_streamed(chat_agent(client), "Hi", run_config=config)  # the zero trap
    first, second = sorted(paid_ledger.calls(), key=lambda r: r["started_at"])
    assert_priced(first, USAGE)
    assert second["cost_status"] == "usage_unknown"
    assert second["cost_reason"] == TRAP
    assert second["input_tokens"] is None


@pytest.mark.parametrize("sensitive", [True, False])
@pytest.mark.parametrize("streamed", [False, True])
async def test_processor_responses_model(paid_ledger: LedgerView,
                                         fake_provider: FakeProviderServer, client: AsyncOpenAI,
                                         sensitive: bool, streamed: bool) -> None:
    """With sensitive data (the SDK default) the response span names model and id;
    without it the span has usage only and the processor alone cannot price it."""
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE))
    agent = responses_agent(client)
    config = RunConfig(trace_include_sensitive_data=sensitive)
    with paid_tracing("acme", external_agent_id="support"):
        if streamed:
            await run_streamed(agent, "Hi", run_config=config)
        else:
            await Runner.run(agent, "Hi", run_config=config)
    [row] = paid_ledger.calls()
    assert row["input_tokens"] == USAGE.input_tokens
    assert row["cache_read_tokens"] == USAGE.cache_read_tokens
    if sensitive:
        assert_priced(row, USAGE)
        assert row["response_id"] == fake_provider.exchanges[0].response_id
    else:
        assert row["cost_status"] == "unpriced" and row["cost_reason"] == "no_model"
        assert row["response_id"] is None


async def test_processor_failed_call_is_no_charge(paid_ledger: LedgerView,
                                                  fake_provider: FakeProviderServer,
                                                  client: AsyncOpenAI) -> None:
    layers("processor")
    fake_provider.queue(FakeReply(status=500, error_message="boom"))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.InternalServerError, match="boom"):
        await Runner.run(chat_agent(client), "Hi")
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["call_status"] == "error"
    assert row["error_type"] == "InternalServerError"
    assert row["input_tokens"] is None


async def test_processor_cancelled_stream_is_usage_unknown(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE, text="word " * 400))
    with paid_tracing("acme", external_agent_id="support"):
        result = Runner.run_streamed(chat_agent(client, include_usage=True), "Hi")
        seen = 0
        async for _ in result.stream_events():
            seen += 1
            if seen == 3:
                result.cancel()
        await asyncio.sleep(0.05)
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "cancelled"


async def test_processor_cut_stream_is_usage_unknown(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE, text="x" * 200, cut_stream_after=3))
    with paid_tracing("acme", external_agent_id="support"):
        await run_streamed(chat_agent(client, include_usage=True), "Hi")
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


def test_processor_counts_model_spans_not_task_or_turn_aggregates(
        paid_ledger: LedgerView) -> None:
    layers("processor")
    span_usage = {"requests": 1, "input_tokens": 100, "output_tokens": 10, "total_tokens": 110,
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 0}}
    aggregate = {"input_tokens": 100, "output_tokens": 10, "cached_input_tokens": 0,
                 "cache_write_input_tokens": 0, "requests": 1, "total_tokens": 110}
    with paid_tracing("acme", external_agent_id="support"), trace("manual"), \
            task_span(name="task") as task, turn_span(turn=1, agent_name="a") as turn:
        with generation_span(model=MINI) as gen:
            gen.span_data.usage = span_usage
        turn.span_data.usage = dict(aggregate)
        task.span_data.usage = dict(aggregate)
    [row] = paid_ledger.calls()
    assert_priced(row, FakeUsage(100, 10))


class _Spy(TracingProcessor):
    """An application's own processor: must keep receiving every span."""

    def __init__(self) -> None:
        self.ended: list[str] = []

    def on_trace_start(self, trace: Trace) -> None:
        return None

    def on_trace_end(self, trace: Trace) -> None:
        return None

    def on_span_start(self, span: Span[Any]) -> None:
        return None

    def on_span_end(self, span: Span[Any]) -> None:
        self.ended.append(span.span_data.type)

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


async def test_instrument_keeps_other_processors_and_uninstrument_makes_it_inert(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    spy = _Spy()
    get_trace_provider().register_processor(spy)
    layers("processor")
    layers("processor")  # idempotent
    agent = chat_agent(client)
    fake_provider.queue(*(FakeReply(usage=FakeUsage(100 + i, 10)) for i in range(3)))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(agent, "one")
        paid_hooks.uninstrument("openai_agents")
        paid_hooks.uninstrument("openai_agents")  # idempotent
        await Runner.run(agent, "two")
        layers("processor")
        await Runner.run(agent, "three")
    assert spy.ended.count("generation") == 3  # the user's processor saw every call
    rows = sorted(paid_ledger.calls(), key=lambda r: r["started_at"])
    assert [r["input_tokens"] for r in rows] == [100, 102]


@pytest.mark.parametrize("replace", ["provider", "processor_list"])
async def test_reinstrument_after_the_application_replaces_tracing(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI,
        replace: str) -> None:
    layers("processor")
    if replace == "provider":
        set_trace_provider(DefaultTraceProvider())
    else:
        set_trace_processors([_Spy()])
    paid_hooks.uninstrument("openai_agents")
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(chat_agent(client), "Hi")
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)


async def test_tracing_processor_in_an_own_processor_list(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    layers("processor")
    spy = _Spy()
    set_trace_processors([spy, tracing_processor()])
    layers("processor")  # already registered: not added a second time
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(chat_agent(client), "Hi")
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)
    assert spy.ended.count("generation") == 1


# -- exactly once across layers --------------------------------------------------------------

COMBINATIONS = [
    ("hook",),
    ("processor",),
    ("provider",),
    ("hook", "processor"),
    ("hook", "provider"),
    ("processor", "provider"),
    ("hook", "processor", "provider"),
]


def _ids(combo: tuple[str, ...]) -> str:
    return "+".join(combo)


@pytest.mark.parametrize("combo", COMBINATIONS, ids=_ids)
@pytest.mark.parametrize("mode", ["run", "streamed"])
async def test_exactly_once_chat_completions(paid_ledger: LedgerView,
                                             fake_provider: FakeProviderServer,
                                             client: AsyncOpenAI, combo: tuple[str, ...],
                                             mode: str) -> None:
    layers(*combo)
    hooks = PaidOpenAIAgentsHook() if "hook" in combo else None
    usages = [FakeUsage(1000 + i, 100 + i, cache_read_tokens=i) for i in range(2)]
    fake_provider.queue(*(FakeReply(usage=u) for u in usages))
    agent = chat_agent(client, include_usage=True)
    with paid_tracing("acme", external_agent_id="support"):
        for text in ("one", "two"):
            if mode == "run":
                await Runner.run(agent, text, hooks=hooks)
            else:
                await run_streamed(agent, text, hooks=hooks)
        signal("done", enable_cost_tracing=True)
    rows = sorted(paid_ledger.calls(), key=lambda r: r["input_tokens"])
    assert len(rows) == 2, rows
    for row, usage in zip(rows, usages, strict=True):
        assert_priced(row, FakeUsage(usage.input_tokens, usage.output_tokens,
                                     cache_read_tokens=usage.cache_read_tokens))
    [sig] = paid_ledger.signals()
    assert Decimal(sig["cost_usd"]) == sum((expected_cost(u) for u in usages), Decimal(0))
    assert sig["ai_calls"] == 2


@pytest.mark.parametrize("combo", COMBINATIONS, ids=_ids)
@pytest.mark.parametrize("mode", ["run", "streamed"])
async def test_exactly_once_responses(paid_ledger: LedgerView,
                                      fake_provider: FakeProviderServer, client: AsyncOpenAI,
                                      combo: tuple[str, ...], mode: str) -> None:
    layers(*combo)
    hooks = PaidOpenAIAgentsHook() if "hook" in combo else None
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        if mode == "run":
            await Runner.run(responses_agent(client), "Hi", hooks=hooks)
        else:
            await run_streamed(responses_agent(client), "Hi", hooks=hooks)
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)
    assert row["response_id"] == fake_provider.exchanges[0].response_id


@pytest.mark.parametrize("combo", [c for c in COMBINATIONS if "provider" in c or
                                   "processor" in c], ids=_ids)
async def test_exactly_once_failed_call_is_one_no_charge_row(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI,
        combo: tuple[str, ...]) -> None:
    layers(*combo)
    hooks = PaidOpenAIAgentsHook() if "hook" in combo else None
    fake_provider.queue(FakeReply(status=500, error_message="boom"))
    with paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(openai.InternalServerError, match="boom"):
        await Runner.run(chat_agent(client), "Hi", hooks=hooks)
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "no_charge"
    assert row["error_type"] == "InternalServerError"


async def test_hook_records_when_the_run_is_not_traced(paid_ledger: LedgerView,
                                                       fake_provider: FakeProviderServer,
                                                       client: AsyncOpenAI) -> None:
    """Processor active but this run's tracing disabled: the hook records the call."""
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(chat_agent(client), "Hi", hooks=PaidOpenAIAgentsHook(),
                         run_config=RunConfig(tracing_disabled=True))
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE)
    assert row["response_id"] == fake_provider.exchanges[0].response_id


async def test_hook_supplies_the_model_a_response_span_lacks(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI) -> None:
    layers("processor")
    fake_provider.queue(FakeReply(usage=USAGE))
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(responses_agent(client, model="gpt-4o"), "Hi",
                         hooks=PaidOpenAIAgentsHook(),
                         run_config=RunConfig(trace_include_sensitive_data=False))
    [row] = paid_ledger.calls()
    assert_priced(row, USAGE, "gpt-4o")


# -- concurrency and secrets ------------------------------------------------------------------


def _usage_for_run(provider: str, body: Any) -> FakeReply:
    n = int(re.findall(r"run-(\d+)", json.dumps(body))[-1])
    return FakeReply(usage=FakeUsage(1000 + n * 10, 100 + n))


@pytest.mark.parametrize("combo", [("hook",), ("processor",), ("hook", "processor")],
                         ids=_ids)
async def test_concurrent_runs_each_signal_gets_its_own_cost(
        paid_ledger: LedgerView, fake_provider: FakeProviderServer, client: AsyncOpenAI,
        combo: tuple[str, ...]) -> None:
    layers(*combo)
    hook = PaidOpenAIAgentsHook() if "hook" in combo else None  # one instance, 30 runs
    fake_provider.responder = _usage_for_run
    agent = chat_agent(client)

    async def one(i: int) -> None:
        with paid_tracing(f"customer-{i}", external_agent_id="agents"):
            await Runner.run(agent, f"run-{i}", hooks=hook)
            signal("answered", enable_cost_tracing=True)

    await asyncio.gather(*(one(i) for i in range(30)))
    signals = paid_ledger.signals()
    assert len(signals) == 30
    for sig in signals:
        i = int(sig["external_customer_id"].split("-")[1])
        assert sig["ai_calls"] == 1, sig
        assert sig["input_tokens"] == 1000 + i * 10
        assert Decimal(sig["cost_usd"]) == expected_cost(FakeUsage(1000 + i * 10, 100 + i))


async def test_no_secret_in_the_ledger(paid_ledger: LedgerView,
                                       fake_provider: FakeProviderServer,
                                       client: AsyncOpenAI) -> None:
    layers("processor", "provider")
    fake_provider.queue(FakeReply(usage=USAGE), FakeReply(usage=USAGE),
                        FakeReply(status=401, error_message="bad key"))
    hook = PaidOpenAIAgentsHook()
    with paid_tracing("acme", external_agent_id="support"):
        await Runner.run(chat_agent(client), "Hi", hooks=hook)
        await run_streamed(chat_agent(client), "Hi", hooks=hook)
        with pytest.raises(openai.AuthenticationError):
            await Runner.run(chat_agent(client), "Hi", hooks=hook)
        signal("done", enable_cost_tracing=True)
    assert fake_provider.exchanges[0].request_headers["authorization"] == f"Bearer {SECRET}"
    rows = paid_ledger.calls()
    assert len(rows) == 3
    dump = json.dumps(rows + paid_ledger.signals(), default=str)
    assert SECRET not in dump and "Bearer" not in dump


# -- the hook's start/end matching (cheap guards: no SDK run needed) ------------------------


class _Obj:
    """Stands in for a run context or an agent (weakly referenceable, unhashable)."""

    __hash__ = None  # type: ignore[assignment]  # like the SDK's dataclasses

    def __init__(self, model: str = MINI) -> None:
        self.model = model


def test_hook_matches_each_start_to_its_own_end_in_order(paid_ledger: LedgerView) -> None:
    hook = PaidOpenAIAgentsHook()
    context, agent, other = _Obj(), _Obj(), _Obj("gpt-4o")
    with paid_tracing("acme", external_agent_id="support"):
        hook._start(context, agent)
        hook._start(context, agent)  # the same agent calls its model again before the end
        hook._start(context, other)
        first, second = hook._take(context, agent), hook._take(context, agent)
        assert first is not None and second is not None
        assert first[2].start_time_ns <= second[2].start_time_ns and first[2] is not second[2]
        assert hook._take(context, agent) is None
        taken = hook._take(context, other)
        assert taken is not None and taken[2].request_model == "gpt-4o"
    assert hook._pending == {}


def test_hook_never_matches_a_dead_runs_entry_under_a_reused_id(
        paid_ledger: LedgerView) -> None:
    hook = PaidOpenAIAgentsHook()
    agent, dead, alive = _Obj(), _Obj(), _Obj()
    with paid_tracing("acme", external_agent_id="support"):
        hook._start(dead, agent)
    [entries] = hook._pending.values()
    del dead
    # Python reuses ids: file the dead run's entry under the live context's id.
    hook._pending = {(id(alive), id(agent)): entries}
    assert entries[0][0]() is None
    assert hook._take(alive, agent) is None
    assert hook._pending == {}


def test_hook_drops_entries_of_runs_that_died_and_stays_bounded(
        paid_ledger: LedgerView, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model call that raises never reaches on_llm_end: its entry must not pile up."""
    from paid_hooks_openai_agents import _hook

    hook = PaidOpenAIAgentsHook()
    agent = _Obj()
    with paid_tracing("acme", external_agent_id="support"):
        for _ in range(1000):
            hook._start(_Obj(), agent)  # the context dies at once, as a failed run's does
        assert len(hook._pending) <= 2 * _hook._SWEEP_MIN
        monkeypatch.setattr(_hook, "_PENDING_LIMIT", 100)
        alive = [_Obj() for _ in range(300)]
        for context in alive:
            hook._start(context, agent)
        assert len(hook._pending) == 100
        assert hook._take(alive[-1], agent) is not None  # the newest are kept
        assert hook._take(alive[0], agent) is None
    assert paid_ledger.calls() == []


def test_hook_reads_the_sdk_usage_as_canonical_usage_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook's direct read of ``agents.Usage`` gives exactly ``canonical_usage``'s result."""
    from agents.usage import Usage as AgentsUsage
    from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

    from paid_hooks_openai_agents import _hook
    from paid_hooks_openai_agents._usage import canonical_usage

    def sdk_usage(cached: Any = 200, write: Any = 0, reasoning: Any = 50, *, inp: Any = 1200,
                  out: Any = 300) -> AgentsUsage:
        return AgentsUsage(requests=1, input_tokens=inp, output_tokens=out,
                           input_tokens_details=InputTokensDetails(cached_tokens=cached,
                                                                   cache_write_tokens=write),
                           output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning))

    missing = sdk_usage()  # a detail model built without a field (model_construct)
    missing.input_tokens_details = InputTokensDetails.model_construct(cached_tokens=7)
    del missing.input_tokens_details.__dict__["cache_write_tokens"]
    cases = {
        "reported": (sdk_usage(), paid_hooks.Usage(
            input_tokens=1200, output_tokens=300, cache_read_tokens=200,
            cache_write_tokens=None, reasoning_tokens=50)),
        "cache write": (sdk_usage(write=100), paid_hooks.Usage(
            input_tokens=1200, output_tokens=300, cache_read_tokens=200,
            cache_write_tokens=100, reasoning_tokens=50)),
        "zeros": (AgentsUsage(), paid_hooks.Usage(
            input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=None,
            reasoning_tokens=0)),
        "missing field": (missing, paid_hooks.Usage(
            input_tokens=1200, output_tokens=300, cache_read_tokens=7,
            cache_write_tokens=None, reasoning_tokens=50)),
    }
    for name, (usage, expected) in cases.items():
        assert _hook._response_usage(usage) == expected == canonical_usage(usage), name
    # Anything else goes through canonical_usage, unchanged.
    for other in (None, {"input_tokens": 5, "output_tokens": 1}, object()):
        assert _hook._response_usage(other) == canonical_usage(other)

    # Regression guard: the SDK's own Usage never takes the generic reader.
    def generic(usage: Any) -> None:
        raise AssertionError("generic reader used")

    monkeypatch.setattr(_hook, "canonical_usage", generic)
    assert _hook._response_usage(sdk_usage()) == cases["reported"][1]
