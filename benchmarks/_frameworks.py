"""One benchmark process: per-invocation cost of a framework hook (LangChain, OpenAI Agents).

Run by ``run.py``::

    python benchmarks/_frameworks.py --case langchain --contender paid --calls 2000

``langchain``: a chat model that answers at once and reports ``usage_metadata`` (as
LangChain's provider integrations do), invoked bare, with ``PaidLangChainCallback``, or
with Langfuse's ``CallbackHandler`` (its spans go to an exporter that drops them; its
HTTP client is a ``MockTransport``, so nothing leaves the process).

``agents``: an OpenAI Agents SDK ``Runner.run`` of a one-turn agent whose model is
``OpenAIChatCompletionsModel`` over an ``AsyncOpenAI`` client on ``httpx.MockTransport``,
bare or with ``hooks=PaidOpenAIAgentsHook()``. The Agents SDK's own tracing is off for
both (it would export to OpenAI's backend).

Each process alternates the bare framework and the contender, invocation by invocation,
and prints one JSON object with the same statistics as ``_calls.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _calls import (
    Background,
    NullExporter,
    Pair,
    PricingWatch,
    _check_ledger,
    measure_paired,
    paired_stats,
)
from _mock import MESSAGES, OPENAI_MODEL, openai_handler, scratch_dir

CASES = {"langchain": ("bare", "paid", "langfuse"), "agents": ("bare", "paid")}


def _langchain(contender: str) -> Callable[[], Any]:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class UsageReportingChatModel(BaseChatModel):
        """Answers at once, with the usage a provider integration would report."""

        counter: int = 0

        @property
        def _llm_type(self) -> str:
            return "openai-chat"

        def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> Any:
            params = super()._get_ls_params(stop=stop, **kwargs)
            params["ls_provider"] = "openai"
            params["ls_model_name"] = OPENAI_MODEL
            return params

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None,
                      **kwargs: Any) -> ChatResult:
            self.counter += 1
            message = AIMessage(
                content="The sea keeps time.",
                id=f"chatcmpl-{self.counter:012d}",
                usage_metadata={"input_tokens": 1200, "output_tokens": 300,
                                "total_tokens": 1500,
                                "input_token_details": {"cache_read": 200}},
                response_metadata={"model_name": "gpt-4o-mini-2024-07-18",
                                   "id": f"chatcmpl-{self.counter:012d}"},
            )
            return ChatResult(generations=[ChatGeneration(message=message)],
                              llm_output={"model_name": "gpt-4o-mini-2024-07-18"})

    model = UsageReportingChatModel()
    config: dict[str, Any] = {}
    if contender == "paid":
        from paid_hooks_langchain import PaidLangChainCallback

        config = {"callbacks": [PaidLangChainCallback()]}
    elif contender == "langfuse":
        from langfuse import Langfuse
        from langfuse.langchain import CallbackHandler

        Langfuse(public_key="pk-lf-bench", secret_key="sk-lf-bench",
                 host="http://127.0.0.1:9", span_exporter=NullExporter(),  # type: ignore[arg-type]
                 httpx_client=httpx.Client(transport=httpx.MockTransport(
                     lambda request: httpx.Response(200, json={}))))
        config = {"callbacks": [CallbackHandler(public_key="pk-lf-bench")]}
    prompt = MESSAGES[0]["content"]

    def invoke() -> Any:
        return model.invoke(prompt, config=config)  # type: ignore[arg-type]

    return invoke


def _agents(contender: str) -> Callable[[], Any]:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    client = AsyncOpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1",
                         max_retries=0,
                         http_client=httpx.AsyncClient(
                             transport=httpx.MockTransport(openai_handler())))
    agent = Agent(name="bench", instructions="Be brief.",
                  model=OpenAIChatCompletionsModel(model=OPENAI_MODEL, openai_client=client))
    hooks: Any = None
    if contender == "paid":
        from paid_hooks_openai_agents import PaidOpenAIAgentsHook

        hooks = PaidOpenAIAgentsHook()
    prompt = MESSAGES[0]["content"]

    async def run_once() -> Any:
        return await Runner.run(agent, prompt, hooks=hooks)

    return run_once


def run(case: str, contender: str, warmup: int, calls: int) -> dict[str, Any]:
    """One process: the bare framework and ``contender`` alternated invocation by
    invocation (as ``_calls.py`` does for the SDKs)."""
    tmp = scratch_dir()
    watch = PricingWatch()
    paid = contender == "paid"
    if paid:
        import paid_hooks

        watch.install()
        paid_hooks.initialize_tracing(ledger=f"sqlite:///{tmp}/ledger.db")
    make = _langchain if case == "langchain" else _agents
    pair = Pair(make("bare"), make(contender))
    scope: Any = None
    if paid:
        import paid_hooks

        scope = paid_hooks.paid_tracing("bench-customer", external_agent_id="bench-agent")
        scope.__enter__()
    background = Background()

    def drain() -> float:
        d0 = time.perf_counter()
        if paid:
            import paid_hooks

            paid_hooks.flush(60)
        return (time.perf_counter() - d0) * 1000

    def settle() -> None:
        drain()
        background.start()

    timings = measure_paired(pair, warmup, calls, settle, asynchronous=case == "agents")
    drain_ms = drain()
    stats = paired_stats(*timings)
    stats.update(background.per_call(calls))
    stats["drain_ms"] = drain_ms
    out: dict[str, Any] = {"case": case, "contender": contender,
                           "workloads": {"invoke" if case == "langchain" else "run": stats}}
    if scope is not None:
        scope.__exit__(None, None, None)
    if paid:
        out["checks"] = _check_ledger(tmp, warmup + calls, watch)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--contender", required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    if args.contender not in CASES[args.case]:
        parser.error(f"--contender for {args.case}: one of {', '.join(CASES[args.case])}")
    result = run(args.case, args.contender, args.warmup, args.calls)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
