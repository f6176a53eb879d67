"""One benchmark process: per-call cost of one contender on one provider SDK.

Run by ``run.py`` (one fresh process per contender and run, contenders interleaved)::

    python benchmarks/_calls.py --provider openai --contender wrapper --calls 2000

It sets the contender up, then for each workload (``sync``, ``stream``, ``async``) makes
``--warmup`` untimed calls and ``--calls`` timed ones over ``httpx.MockTransport`` (no
network), and prints one JSON object: per workload, the median / p99 wall time and caller
thread CPU time per call, the CPU the other threads spent per call (the paid-hooks
pipeline worker, span processors), and how long draining the background work took.

Contenders: ``bare`` (the SDK alone), ``wrapper`` (``PaidOpenAI`` / ``PaidAnthropic``),
``auto`` (``paid_hooks.instrument(provider)``), ``httpx`` (the httpx hook on the SDK's
client), ``openinference`` and ``openllmetry`` (the peers, with an SDK TracerProvider, a
BatchSpanProcessor and an exporter that drops everything). paid-hooks contenders run
inside one ``paid_tracing`` scope and write a real SQLite ledger; the process checks
that every call was priced exactly once, and that pricing never ran on the caller's
thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mock import (
    ANTHROPIC_MODEL,
    MESSAGES,
    OPENAI_MODEL,
    anthropic_handler,
    openai_handler,
    scratch_dir,
)

PAID = ("wrapper", "auto", "httpx")
PEERS = ("openinference", "openllmetry")
CONTENDERS = ("bare", *PAID, *PEERS)
WORKLOADS = ("sync", "stream", "async")


class NullExporter:
    """A span exporter that drops every span (the peers' spans go nowhere)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _peer_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter()))  # type: ignore[arg-type]
    return provider


def _instrument_peer(provider_name: str, contender: str) -> Any:
    tracer_provider = _peer_provider()
    if contender == "openinference":
        if provider_name == "openai":
            from openinference.instrumentation.openai import OpenAIInstrumentor as Inst
        else:
            from openinference.instrumentation.anthropic import AnthropicInstrumentor as Inst
    elif provider_name == "openai":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Inst
    else:
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as Inst
    Inst().instrument(tracer_provider=tracer_provider)
    return tracer_provider


class PricingWatch:
    """Counts pricing calls per thread (wraps the builtin price source's first step)."""

    def __init__(self) -> None:
        self.threads: dict[str, int] = {}

    def install(self) -> None:
        from paid_hooks import pricing

        original = pricing._genai_usage_kwargs

        def watched(usage: Any) -> Any:
            name = threading.current_thread().name
            self.threads[name] = self.threads.get(name, 0) + 1
            return original(usage)

        pricing._genai_usage_kwargs = watched


def _http_module(provider_name: str) -> Any:
    """The HTTP library the provider's SDK is built on (anthropic >= 2.13 uses httpx2)."""
    if provider_name == "anthropic":
        import anthropic._base_client as base

        if getattr(base, "httpx2", None) is not None:
            import httpx2

            return httpx2
    return httpx


def _clients(provider_name: str, contender: str) -> tuple[Any, Any]:
    """(sync client, async client) for the contender, both over MockTransport."""
    http = _http_module(provider_name)
    handler = openai_handler() if provider_name == "openai" else anthropic_handler(http)
    sync_http = http.Client(transport=http.MockTransport(handler))
    async_http = http.AsyncClient(transport=http.MockTransport(handler))
    if contender == "httpx":
        import paid_hooks_httpx

        paid_hooks_httpx.instrument_client(sync_http)
        paid_hooks_httpx.instrument_client(async_http)
    if provider_name == "openai":
        from openai import AsyncOpenAI, OpenAI

        kwargs: dict[str, Any] = {"api_key": "sk-bench", "max_retries": 0,
                                  "base_url": "https://api.openai.com/v1"}
        sync_client: Any = OpenAI(http_client=sync_http, **kwargs)
        async_client: Any = AsyncOpenAI(http_client=async_http, **kwargs)
        if contender == "wrapper":
            from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI

            sync_client, async_client = PaidOpenAI(sync_client), PaidAsyncOpenAI(async_client)
    else:
        from anthropic import Anthropic, AsyncAnthropic

        kwargs = {"api_key": "sk-ant-bench", "max_retries": 0,
                  "base_url": "https://api.anthropic.com"}
        sync_client = Anthropic(http_client=sync_http, **kwargs)
        async_client = AsyncAnthropic(http_client=async_http, **kwargs)
        if contender == "wrapper":
            from paid_hooks_anthropic import PaidAnthropic, PaidAsyncAnthropic

            sync_client = PaidAnthropic(sync_client)
            async_client = PaidAsyncAnthropic(async_client)
    return sync_client, async_client


def _call_functions(provider_name: str, sync_client: Any,
                    async_client: Any) -> dict[str, Callable[[], Any]]:
    if provider_name == "openai":
        def sync_call() -> Any:
            return sync_client.chat.completions.create(model=OPENAI_MODEL, messages=MESSAGES)

        def stream_call() -> Any:
            stream = sync_client.chat.completions.create(
                model=OPENAI_MODEL, messages=MESSAGES, stream=True,
                stream_options={"include_usage": True})
            for _ in stream:
                pass

        async def async_call() -> Any:
            return await async_client.chat.completions.create(model=OPENAI_MODEL,
                                                              messages=MESSAGES)
    else:
        def sync_call() -> Any:
            return sync_client.messages.create(model=ANTHROPIC_MODEL, max_tokens=512,
                                               messages=MESSAGES)

        def stream_call() -> Any:
            stream = sync_client.messages.create(model=ANTHROPIC_MODEL, max_tokens=512,
                                                 messages=MESSAGES, stream=True)
            for _ in stream:
                pass

        async def async_call() -> Any:
            return await async_client.messages.create(model=ANTHROPIC_MODEL, max_tokens=512,
                                                      messages=MESSAGES)
    return {"sync": sync_call, "stream": stream_call, "async": async_call}


def _thread_cpu() -> dict[str, int]:
    """CPU time (ns) of every live thread but the caller's, by thread name."""
    out: dict[str, int] = {}
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            out[thread.name] = out.get(thread.name, 0) + time.clock_gettime_ns(clock)
        except (OSError, AttributeError):
            continue
    return out


def _stats(wall: list[int], cpu: list[int]) -> dict[str, float]:
    wall_sorted, cpu_sorted = sorted(wall), sorted(cpu)
    n = len(wall_sorted)

    def pct(values: list[int], q: float) -> float:
        return values[min(n - 1, int(q * n))] / 1000

    return {"median_us": pct(wall_sorted, 0.5), "p99_us": pct(wall_sorted, 0.99),
            "mean_us": sum(wall) / n / 1000,
            "cpu_median_us": pct(cpu_sorted, 0.5), "cpu_p99_us": pct(cpu_sorted, 0.99)}


def _measure_sync(fn: Callable[[], Any], warmup: int, calls: int,
                  settle: Callable[[], Any]) -> tuple[list[int], list[int]]:
    for _ in range(warmup):
        fn()
    settle()
    wall: list[int] = []
    cpu: list[int] = []
    perf, thread_time = time.perf_counter_ns, time.thread_time_ns
    for _ in range(calls):
        t0, c0 = perf(), thread_time()
        fn()
        c1, t1 = thread_time(), perf()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
    return wall, cpu


def _measure_async(fn: Callable[[], Any], warmup: int, calls: int,
                   settle: Callable[[], Any]) -> tuple[list[int], list[int]]:
    async def main() -> tuple[list[int], list[int]]:
        for _ in range(warmup):
            await fn()
        settle()
        wall: list[int] = []
        cpu: list[int] = []
        perf, thread_time = time.perf_counter_ns, time.thread_time_ns
        for _ in range(calls):
            t0, c0 = perf(), thread_time()
            await fn()
            c1, t1 = thread_time(), perf()
            wall.append(t1 - t0)
            cpu.append(c1 - c0)
        return wall, cpu

    return asyncio.run(main())


def run(provider_name: str, contender: str, warmup: int, calls: int,
        workloads: Sequence[str]) -> dict[str, Any]:
    tmp = scratch_dir()
    watch = PricingWatch()
    tracer_provider: Any = None
    if contender in PAID:
        import paid_hooks

        watch.install()
        paid_hooks.initialize_tracing(ledger=f"sqlite:///{tmp}/ledger.db")
        if contender == "auto":
            paid_hooks.instrument(provider_name)
    elif contender in PEERS:
        tracer_provider = _instrument_peer(provider_name, contender)
    sync_client, async_client = _clients(provider_name, contender)
    functions = _call_functions(provider_name, sync_client, async_client)

    scope: Any = None
    if contender in PAID:
        import paid_hooks

        scope = paid_hooks.paid_tracing("bench-customer", external_agent_id="bench-agent")
        scope.__enter__()
    out: dict[str, Any] = {"provider": provider_name, "contender": contender,
                           "pid": os.getpid(), "workloads": {}}
    counters: dict[str, Any] = {}

    def drain() -> float:
        """Finish the background work of the calls made so far; returns its wall time."""
        d0 = time.perf_counter()
        if contender in PAID:
            import paid_hooks

            paid_hooks.flush(60)
        elif tracer_provider is not None:
            tracer_provider.force_flush()
        return (time.perf_counter() - d0) * 1000

    def settle() -> None:
        """After the warm-up: drain it, then start counting CPU."""
        drain()
        counters.update(p0=time.process_time_ns(), c0=time.thread_time_ns(),
                        threads0=_thread_cpu())

    for workload in workloads:
        fn = functions[workload]
        if workload == "async":
            wall, cpu = _measure_async(fn, warmup, calls, settle)
        else:
            wall, cpu = _measure_sync(fn, warmup, calls, settle)
        drain_ms = drain()
        p1, c1 = time.process_time_ns(), time.thread_time_ns()
        threads1 = _thread_cpu()
        threads0 = counters["threads0"]
        stats = _stats(wall, cpu)
        stats["threads_cpu_us"] = {
            name: round((cpu_ns - threads0.get(name, 0)) / calls / 1000, 2)
            for name, cpu_ns in threads1.items() if cpu_ns - threads0.get(name, 0) > 0}
        stats["background_cpu_us"] = ((p1 - counters["p0"]) - (c1 - counters["c0"])) / calls / 1000
        stats["drain_ms"] = drain_ms
        stats["calls"] = calls
        out["workloads"][workload] = stats
    if scope is not None:
        scope.__exit__(None, None, None)
    if contender in PAID:
        out["checks"] = _check_ledger(tmp, len(workloads) * (warmup + calls), watch)
    return out


def _check_ledger(tmp: str, expected: int, watch: PricingWatch) -> dict[str, Any]:
    import paid_hooks
    from paid_hooks.ledger import open_ledger

    paid_hooks.flush(60)
    rows = open_ledger(f"sqlite:///{tmp}/ledger.db").calls()
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["cost_status"]] = statuses.get(row["cost_status"], 0) + 1
    caller = threading.main_thread().name
    return {
        "rows": len(rows),
        "expected_rows": expected,
        "cost_status": statuses,
        "pricing_threads": dict(watch.threads),
        "priced_on_caller_thread": watch.threads.get(caller, 0),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=("openai", "anthropic"), required=True)
    parser.add_argument("--contender", choices=CONTENDERS, required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args(argv)
    result = run(args.provider, args.contender, args.warmup, args.calls,
                 args.workloads.split(","))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
