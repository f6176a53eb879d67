"""One benchmark process: per-call cost of one contender on one provider SDK.

Run by ``run.py`` (one fresh process per contender and run, contenders interleaved)::

    python benchmarks/_calls.py --provider openai --contender wrapper --calls 2000

It sets the contender up, then for each workload (``sync``, ``stream``, ``async``) makes
``--warmup`` untimed calls and ``--calls`` timed ones over ``httpx.MockTransport`` (no
network), and prints one JSON object: per workload, the median / p99 wall time and caller
thread CPU time per call, the CPU the other threads spent per call (the paid-hooks
pipeline worker, span processors), and how long draining the background work took.
With ``--idle-ms N`` every timed call of both arms follows an N ms sleep (:class:`IdleGap`).

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
import statistics
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


def _nothing() -> None:
    return None


class PatchSwitch:
    """Switches an instrumentation's monkeypatches in and out, without its own uninstrument.

    ``capture`` snapshots every attribute of the named packages' modules and of the classes
    they define; ``instrumented`` snapshots again after the instrumentation was installed
    and keeps what changed. ``on()`` / ``off()`` then set the patched / original values
    (an attribute the instrumentation added is deleted by ``off()``). This works the same
    for every instrumentation that patches classes or modules (ours and the peers'), where
    the peers' ``uninstrument()`` does not always undo everything (OpenLLMetry's OpenAI
    instrumentor leaves wrappers behind, so a re-instrument stacks them). Each process
    checks its span / ledger-row count, so a switch that leaked would fail the run.
    """

    _MISSING = object()

    def __init__(self, packages: Sequence[str]) -> None:
        self._packages = tuple(packages)
        self._owners_before: list[Any] = []
        self._before: dict[tuple[int, str], tuple[Any, Any]] = {}
        self._changes: list[tuple[Any, str, Any, Any]] = []

    def _owners(self) -> list[Any]:
        owners: list[Any] = []
        for name, module in list(sys.modules.items()):
            if module is None or name.split(".")[0] not in self._packages:
                continue
            owners.append(module)
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == name:
                    owners.append(value)
        return owners

    @staticmethod
    def _snapshot(owners: Sequence[Any]) -> dict[tuple[int, str], tuple[Any, Any]]:
        return {(id(owner), key): (owner, value)
                for owner in owners for key, value in list(vars(owner).items())}

    def capture(self) -> None:
        self._owners_before = self._owners()  # kept alive: their ids key the snapshot
        self._before = self._snapshot(self._owners_before)

    def instrumented(self) -> int:
        """Keep what the instrumentation changed on the modules and classes that existed
        before it was installed (modules it imported meanwhile are new, not patched);
        returns how many attributes that is."""
        after = self._snapshot(self._owners_before)
        self._changes = []
        for key, (owner, value) in after.items():
            original = self._before.get(key, (owner, self._MISSING))[1]
            if original is not value:
                self._changes.append((owner, key[1], original, value))
        return len(self._changes)

    def on(self) -> None:
        for owner, name, _original, patched in self._changes:
            setattr(owner, name, patched)

    def off(self) -> None:
        for owner, name, original, _patched in self._changes:
            if original is self._MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


class CountingExporter(NullExporter):
    """Drops every span, counting them (a peer's span count checks its switch)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[Any]) -> Any:
        self.spans += len(spans)
        return super().export(spans)


class Pair:
    """The two arms one process alternates: the bare SDK and the contender.

    ``on`` / ``off`` switch the contender's instrumentation in and out around each of its
    calls (untimed); they do nothing for contenders that wrap their own client.
    """

    def __init__(self, bare: Callable[[], Any], contender: Callable[[], Any],
                 on: Callable[[], None] = _nothing, off: Callable[[], None] = _nothing) -> None:
        self.bare, self.contender, self.on, self.off = bare, contender, on, off


class IdleGap:
    """Sleeps ``ms`` milliseconds: run (untimed) before every timed call of both arms, it
    makes each call start the way one does after the thread waited on the network: the
    core idle or busy elsewhere meanwhile, its caches and clock no longer warm for this
    code. (Touching memory between calls instead, to evict the caches, changed nothing
    measurable here; an idle gap of a few ms made both arms slower.)"""

    def __init__(self, ms: float) -> None:
        self._seconds = ms / 1000

    def __call__(self) -> None:
        time.sleep(self._seconds)


def measure_paired(pair: Pair, warmup: int, pairs: int, settle: Callable[[], Any],
                   asynchronous: bool, before: Callable[[], None] = _nothing,
                   ) -> tuple[list[int], list[int], list[int], list[int]]:
    """Wall and caller-CPU ns per call: (bare wall, bare cpu, contender wall, contender cpu).

    The arms alternate call by call (bare first in even pairs, the contender first in odd
    ones), so whatever drifts over the run, and whatever makes one process faster than
    another, hits both arms alike; pair ``i`` is the ``i``-th call of each arm.
    ``before`` runs, untimed, before every timed call of either arm (a
    :class:`IdleGap`, or nothing).
    """
    perf, thread_time = time.perf_counter_ns, time.thread_time_ns
    bare_wall: list[int] = []
    bare_cpu: list[int] = []
    wall: list[int] = []
    cpu: list[int] = []
    bare, contender, on, off = pair.bare, pair.contender, pair.on, pair.off

    if not asynchronous:
        def timed_bare() -> None:
            before()
            t0, c0 = perf(), thread_time()
            bare()
            c1, t1 = thread_time(), perf()
            bare_wall.append(t1 - t0)
            bare_cpu.append(c1 - c0)

        def timed_contender() -> None:
            on()
            before()
            t0, c0 = perf(), thread_time()
            contender()
            c1, t1 = thread_time(), perf()
            off()
            wall.append(t1 - t0)
            cpu.append(c1 - c0)

        for _ in range(warmup):
            bare()
            on()
            contender()
            off()
        settle()
        for i in range(pairs):
            if i & 1:
                timed_contender()
                timed_bare()
            else:
                timed_bare()
                timed_contender()
        return bare_wall, bare_cpu, wall, cpu

    async def main() -> None:
        async def timed_bare() -> None:
            before()
            t0, c0 = perf(), thread_time()
            await bare()
            c1, t1 = thread_time(), perf()
            bare_wall.append(t1 - t0)
            bare_cpu.append(c1 - c0)

        async def timed_contender() -> None:
            on()
            before()
            t0, c0 = perf(), thread_time()
            await contender()
            c1, t1 = thread_time(), perf()
            off()
            wall.append(t1 - t0)
            cpu.append(c1 - c0)

        for _ in range(warmup):
            await bare()
            on()
            await contender()
            off()
        settle()
        for i in range(pairs):
            if i & 1:
                await timed_contender()
                await timed_bare()
            else:
                await timed_bare()
                await timed_contender()

    asyncio.run(main())
    return bare_wall, bare_cpu, wall, cpu


def paired_stats(bare_wall: list[int], bare_cpu: list[int], wall: list[int],
                 cpu: list[int]) -> dict[str, Any]:
    """Both arms' statistics, and the overhead: the median of the paired differences."""
    bare, contender = _stats(bare_wall, bare_cpu), _stats(wall, cpu)

    def median_difference(arm: list[int], reference: list[int]) -> float:
        return statistics.median(a - r for a, r in zip(arm, reference, strict=True)) / 1000

    return {
        "bare": bare, "contender": contender,
        "overhead_us": median_difference(wall, bare_wall),
        "cpu_overhead_us": median_difference(cpu, bare_cpu),
        "p99_overhead_us": contender["p99_us"] - bare["p99_us"],
        "ratio": contender["median_us"] / bare["median_us"],
        "pairs": len(wall),
    }


class Background:
    """CPU the process's other threads spend (the pipeline worker, span processors)."""

    def __init__(self) -> None:
        self.process0 = self.caller0 = 0
        self.threads0: dict[str, int] = {}

    def start(self) -> None:
        self.process0, self.caller0 = time.process_time_ns(), time.thread_time_ns()
        self.threads0 = _thread_cpu()

    def per_call(self, calls: int) -> dict[str, Any]:
        process1, caller1 = time.process_time_ns(), time.thread_time_ns()
        threads1 = _thread_cpu()
        return {
            "background_cpu_us": ((process1 - self.process0) - (caller1 - self.caller0))
            / calls / 1000,
            "threads_cpu_us": {name: round((ns - self.threads0.get(name, 0)) / calls / 1000, 2)
                               for name, ns in threads1.items()
                               if ns - self.threads0.get(name, 0) > 0},
        }


def _peer_instrumentor(provider_name: str, contender: str) -> Any:
    if contender == "openinference":
        if provider_name == "openai":
            from openinference.instrumentation.openai import OpenAIInstrumentor as Inst
        else:
            from openinference.instrumentation.anthropic import AnthropicInstrumentor as Inst
    elif provider_name == "openai":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Inst
    else:
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as Inst
    return Inst()


def run(provider_name: str, contender: str, warmup: int, calls: int,
        workloads: Sequence[str], idle_ms: float = 0) -> dict[str, Any]:
    """One process: every workload, bare and ``contender`` alternated call by call
    (``idle_ms``: a sleep before every timed call, see :class:`IdleGap`)."""
    tmp = scratch_dir()
    watch = PricingWatch()
    tracer_provider: Any = None
    exporter: CountingExporter | None = None
    switch: PatchSwitch | None = None
    packages = ["openai"] if provider_name == "openai" else ["anthropic"]
    packages += ["httpx", "httpx2"]
    if contender in PAID:
        import paid_hooks

        watch.install()
        paid_hooks.initialize_tracing(ledger=f"sqlite:///{tmp}/ledger.db")
    bare_functions = _call_functions(provider_name, *_clients(provider_name, "bare"))
    if contender in ("auto", *PEERS):
        for workload in workloads:  # imports the SDK modules the calls use, then snapshot
            call = bare_functions[workload]
            asyncio.run(call()) if workload == "async" else call()
        switch = PatchSwitch(packages)
        switch.capture()
        if contender == "auto":
            import paid_hooks

            paid_hooks.instrument(provider_name)
        else:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider = TracerProvider()
            exporter = CountingExporter()
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))  # type: ignore[arg-type]
            _peer_instrumentor(provider_name, contender).instrument(
                tracer_provider=tracer_provider)
        if not switch.instrumented():
            raise RuntimeError(f"{contender} patched nothing in {packages}")
        switch.off()
    functions = _call_functions(provider_name,
                                *_clients(provider_name, "bare" if switch else contender))

    scope: Any = None
    if contender in PAID:
        import paid_hooks

        scope = paid_hooks.paid_tracing("bench-customer", external_agent_id="bench-agent")
        scope.__enter__()
    out: dict[str, Any] = {"provider": provider_name, "contender": contender,
                           "pid": os.getpid(), "idle_ms": idle_ms, "workloads": {}}
    background = Background()

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
        """After the warm-up: drain it, then start counting background CPU."""
        drain()
        background.start()

    for workload in workloads:
        pair = Pair(bare_functions[workload], functions[workload],
                    *((switch.on, switch.off) if switch else ()))
        timings = measure_paired(pair, warmup, calls, settle, workload == "async",
                                 IdleGap(idle_ms) if idle_ms else _nothing)
        drain_ms = drain()
        stats = paired_stats(*timings)
        stats.update(background.per_call(calls))
        stats["drain_ms"] = drain_ms
        out["workloads"][workload] = stats
    if scope is not None:
        scope.__exit__(None, None, None)
    expected = len(workloads) * (warmup + calls)
    if contender in PAID:
        out["checks"] = _check_ledger(tmp, expected, watch)
    elif exporter is not None:
        assert tracer_provider is not None
        tracer_provider.force_flush()
        out["checks"] = {"spans": exporter.spans, "expected_spans": expected}
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
    parser.add_argument("--idle-ms", type=float, default=0,
                        help="sleep before every timed call (a thread back from a network wait)")
    args = parser.parse_args(argv)
    result = run(args.provider, args.contender, args.warmup, args.calls,
                 args.workloads.split(","), args.idle_ms)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
