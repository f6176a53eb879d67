"""OpenAI Agents SDK plugin: multi-call runs (function tools, handoffs between agents on
different models), with the hook, the processor, and every layer at once.

The shared fake provider answers chat completions with text only, so these tests run a
private fake server with one extra route, ``/scripted/chat/completions``, that answers in
the real Chat Completions format with the tool calls a test scripts in
``FakeReply.extra["tool_calls"]`` (a list of ``(name, arguments_json)``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    RunContextWrapper,
    RunHooks,
    Runner,
    Tool,
    function_tool,
)
from openai import AsyncOpenAI

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks.testing.fake.openai_format import chat_usage
from paid_hooks.testing.fake.server import (
    Exchange,
    FakeRequest,
    FakeResponse,
    json_response,
    sse_event,
    sse_response,
)
from paid_hooks_openai_agents import PaidOpenAIAgentsHook

pytestmark = pytest.mark.usefixtures("agents_tracing")  # see conftest.py

MINI, FULL = "gpt-4o-mini", "gpt-4o"


def expected_cost(usage: FakeUsage, model: str) -> Decimal:
    kwargs = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    price = genai_prices.calc_price(genai_prices.Usage(**kwargs), model, provider_id="openai")
    return Decimal(price.total_price)


# -- a scripted Chat Completions route with tool calls ---------------------------------------


def _scripted_chat(server: FakeProviderServer, request: FakeRequest,
                   match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("openai", body)
    model = reply.model or body.get("model")
    stream = bool(body.get("stream"))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    usage = server.usage_for(reply, body)
    response_id = server.new_id("chatcmpl-")
    calls = [{"id": server.new_id("call_"), "type": "function",
              "function": {"name": name, "arguments": arguments}}
             for name, arguments in reply.extra.get("tool_calls", [])]
    server.record(Exchange("openai", "chat", request.path, request.headers, body, 200,
                           response_id, model, usage, stream, include_usage or not stream))
    finish = "tool_calls" if calls else "stop"
    base = {"id": response_id, "created": int(time.time()), "model": model,
            "system_fingerprint": "fp_fake", "service_tier": "default"}
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else reply.text,
                                   "refusal": None, "annotations": []}
        if calls:
            message["tool_calls"] = calls
        return json_response(200, {**base, "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": chat_usage(usage)})

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        extra = {"usage": None} if include_usage else {}
        return sse_event({**base, "object": "chat.completion.chunk", **extra, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]})

    def events() -> Iterator[bytes]:
        yield chunk({"role": "assistant", "content": None if calls else ""})
        for i, call in enumerate(calls):
            yield chunk({"tool_calls": [{"index": i, **call}]})
        if not calls:
            yield chunk({"content": reply.text})
        yield chunk({}, finish)
        if include_usage:
            yield sse_event({**base, "object": "chat.completion.chunk", "choices": [],
                             "usage": chat_usage(usage)})
        yield sse_event("[DONE]")

    return sse_response(events())


@pytest.fixture(scope="module")
def scripted() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        server.route("POST", r"/scripted/chat/completions", _scripted_chat)
        yield server


@pytest.fixture
def fake(scripted: FakeProviderServer) -> Iterator[FakeProviderServer]:
    scripted.reset()
    yield scripted
    scripted.reset()


def model(fake: FakeProviderServer, name: str) -> OpenAIChatCompletionsModel:
    client = AsyncOpenAI(base_url=f"{fake.url}/scripted", api_key="sk-test", max_retries=0)
    return OpenAIChatCompletionsModel(model=name, openai_client=client)


class _Hooks(PaidOpenAIAgentsHook):
    """The paid hook, also noting tool and handoff events (an application extending it)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def on_tool_end(self, context: RunContextWrapper[Any], agent: Any, tool: Tool,
                          result: object) -> None:
        self.events.append(f"tool:{tool.name}")

    async def on_handoff(self, context: RunContextWrapper[Any], from_agent: Any,
                         to_agent: Any) -> None:
        self.events.append(f"handoff:{from_agent.name}->{to_agent.name}")


class _Events(RunHooks[Any]):
    """Tool and handoff events only: no paid hook attached."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def on_tool_end(self, context: RunContextWrapper[Any], agent: Any, tool: Tool,
                          result: object) -> None:
        self.events.append(f"tool:{tool.name}")

    async def on_handoff(self, context: RunContextWrapper[Any], from_agent: Any,
                         to_agent: Any) -> None:
        self.events.append(f"handoff:{from_agent.name}->{to_agent.name}")


LAYERS = {
    "hook": ("hook",),
    "processor": ("processor",),
    "all": ("hook", "processor", "provider"),
}


def activate(layer: str) -> RunHooks[Any]:
    names = LAYERS[layer]
    if "processor" in names:
        paid_hooks.instrument("openai_agents")
    if "provider" in names:
        paid_hooks.instrument("openai")
    return _Hooks() if "hook" in names else _Events()


async def run(agent: Agent[Any], text: str, hooks: RunHooks[Any], mode: str) -> Any:
    if mode == "run":
        return await Runner.run(agent, text, hooks=hooks)
    result = Runner.run_streamed(agent, text, hooks=hooks)
    async for _ in result.stream_events():
        pass
    return result


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["run", "streamed"])
@pytest.mark.parametrize("layer", list(LAYERS))
async def test_handoff_is_priced_per_agent_model(paid_ledger: LedgerView,
                                                 fake: FakeProviderServer, layer: str,
                                                 mode: str) -> None:
    hooks = activate(layer)
    settings = ModelSettings(include_usage=True)
    billing = Agent(name="billing", model=model(fake, FULL), model_settings=settings,
                    instructions="Resolve billing questions.")
    triage = Agent(name="triage", model=model(fake, MINI), model_settings=settings,
                   instructions="Route the user.", handoffs=[billing])
    routed, answered = FakeUsage(900, 40), FakeUsage(1500, 250)
    fake.queue(FakeReply(usage=routed, extra={"tool_calls": [("transfer_to_billing", "{}")]}),
               FakeReply(usage=answered, text="Your invoice is settled."))
    with paid_tracing("acme", external_agent_id="support"):
        result = await run(triage, "Why was I charged twice?", hooks, mode)
        signal("ticket_resolved", enable_cost_tracing=True)
    assert result.final_output == "Your invoice is settled."
    assert hooks.events == ["handoff:triage->billing"]
    # the run's cumulative usage spans both agents: never priced as one call
    assert result.context_wrapper.usage.input_tokens == 2400
    rows = sorted(paid_ledger.calls(), key=lambda r: r["started_at"])
    assert [(r["model"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        (MINI, 900, 40), (FULL, 1500, 250)]
    assert [Decimal(r["cost_usd"]) for r in rows] == [
        expected_cost(routed, MINI), expected_cost(answered, FULL)]
    [sig] = paid_ledger.signals()
    assert Decimal(sig["cost_usd"]) == expected_cost(routed, MINI) + expected_cost(answered, FULL)


@pytest.mark.parametrize("mode", ["run", "streamed"])
@pytest.mark.parametrize("layer", list(LAYERS))
async def test_tool_calls_carry_no_cost(paid_ledger: LedgerView, fake: FakeProviderServer,
                                        layer: str, mode: str) -> None:
    hooks = activate(layer)
    looked_up: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        looked_up.append(city)
        return "sunny"

    agent = Agent(name="assistant", model=model(fake, MINI), tools=[get_weather],
                  model_settings=ModelSettings(include_usage=True))
    asked, answered = FakeUsage(600, 30), FakeUsage(700, 60)
    fake.queue(FakeReply(usage=asked, extra={"tool_calls": [("get_weather", '{"city": "Paris"}')]}),
               FakeReply(usage=answered, text="Sunny in Paris."))
    with paid_tracing("acme", external_agent_id="support"):
        await run(agent, "Weather in Paris?", hooks, mode)
    assert looked_up == ["Paris"] and hooks.events == ["tool:get_weather"]
    rows = sorted(paid_ledger.calls(), key=lambda r: r["started_at"])
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(600, 30), (700, 60)]
    assert sum(Decimal(r["cost_usd"]) for r in rows) == (
        expected_cost(asked, MINI) + expected_cost(answered, MINI))
    if "hook" in LAYERS[layer] and "processor" not in LAYERS[layer]:
        assert [r["response_id"] for r in rows] == [e.response_id for e in fake.exchanges]
