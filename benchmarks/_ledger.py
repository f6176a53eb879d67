"""One benchmark process for the ledger side: ingest, reports, memory, import time, pricing.

Run by ``run.py``; each subcommand prints one JSON object::

    python benchmarks/_ledger.py ingest --calls 200000 [--url postgresql://...]
    python benchmarks/_ledger.py ingest --calls 200000 --processes 2
    python benchmarks/_ledger.py reports --calls 1000000 --signals 100000
    python benchmarks/_ledger.py memory --traces 100000
    python benchmarks/_ledger.py import
    python benchmarks/_ledger.py pricing --calls 20000

* ``ingest``: a saturated producer (one thread calling ``start_call``/``finish`` as fast
  as it can, traces of 10 calls and one cost signal, usage varying per call) and the time
  until every call is a row in the ledger (``flush``), as calls per second. Also the
  ledger's own write rate (``write()`` of ready-made records with random trace ids,
  8192 per transaction, as the pipeline writes them). With ``--processes P``: P such
  producer processes at once, each with its own pipeline, into one SQLite ledger (a
  Python process runs Python code on one core at a time; a server uses every core with a
  process per core), timed from their common start until all have flushed.
* ``reports``: a ledger of N calls and M signals (10 calls per trace, 1,000 customers,
  one signal per trace, 5 % of them plain signals), then ``signals()``, the
  ``costs --by customer`` rows, and the two CLI commands (``--json``, output discarded),
  each timed three times.
* ``memory``: RSS after 10,000 warm-up traces and after N more, each trace an asyncio task
  with ``paid_tracing``, one call and one cost signal; flushed and collected before each
  reading. Also the peak number of records waiting for the worker, and the Python heap
  blocks still allocated per trace after the drain (``sys.getallocatedblocks``).
* ``import``: ``import paid_hooks`` in fresh interpreters (median of 7), with sockets
  forbidden, and whether genai-prices got imported.
* ``pricing``: microseconds per call of ``genai_prices.calc_price`` and of paid-hooks'
  builtin price source (which runs on the pipeline worker only), same usages.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _mock import scratch_dir

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent


def _usage(i: int) -> Any:
    from paid_hooks import Usage

    return Usage(input_tokens=800 + i % 997, output_tokens=100 + i % 331,
                 cache_read_tokens=(i % 5) * 64)


def _producer(url: str) -> Any:
    """Set up paid-hooks with a ledger at ``url``; returns ``produce(first, n)``, which
    records calls ``first .. first + n - 1`` as fast as it can (traces of 10 calls and one
    cost signal each)."""
    import paid_hooks

    paid_hooks.initialize_tracing(ledger=url)
    start_call, finish_trace = paid_hooks.start_call, paid_hooks.signal

    def produce(first: int, n: int) -> None:
        for t in range(first // 10, (first + n) // 10):
            with paid_hooks.paid_tracing(f"cust-{t % 1000}", external_agent_id="agent"):
                for j in range(10):
                    i = t * 10 + j
                    handle = start_call(provider="openai", operation="chat",
                                        request_model="gpt-4o-mini", captured_by="bench")
                    handle.finish(_usage(i), response_model="gpt-4o-mini-2024-07-18",
                                  response_id=f"resp-{i}")
                finish_trace("done", enable_cost_tracing=True)

    return produce


_WARMUP = 2000
"""Calls recorded (and flushed) by each producer before the timed ones."""


def ingest_child(url: str, first: int, calls: int) -> None:
    """One of several producer processes (:func:`ingest_processes`): warm up, say
    ``ready``, wait for ``go`` on stdin, record ``calls`` calls from ``first``, flush, and
    say ``done``."""
    import paid_hooks

    produce = _producer(url)
    produce(first, _WARMUP)
    paid_hooks.flush(120)
    print("ready", flush=True)
    sys.stdin.readline()
    produce(first + _WARMUP, calls)
    paid_hooks.flush(600)
    print("done", flush=True)
    paid_hooks.shutdown()


def ingest_processes(calls: int, processes: int) -> dict[str, Any]:
    """Ingest into one SQLite ledger from ``processes`` producer processes at once (a
    Python process runs Python on one core at a time: a server uses all cores with one
    process per core). Timed from the common start until every process has flushed."""
    from paid_hooks.ledger import open_ledger

    url = f"sqlite:///{scratch_dir()}/ledger.db"
    open_ledger(url).close()  # created once, before the writers start
    per = calls // processes
    children = [subprocess.Popen(
        [PYTHON, __file__, "ingest-child", "--url", url, "--first", str(k * 10**8),
         "--calls", str(per)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for k in range(processes)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "done"
    elapsed = time.perf_counter() - t0
    for child in children:
        child.wait(60)
    rows = len(open_ledger(url).calls())
    return {"processes": processes, "calls": per * processes, "rows": rows,
            "expected_rows": (per + _WARMUP) * processes,
            "calls_per_s": per * processes / elapsed}


def _fresh_postgres_url(url: str) -> str:
    """``url`` with a new, empty schema of its database as the search path: every run
    starts from an empty ledger, and its row count is its own."""
    from urllib.parse import quote

    import psycopg

    schema = f"bench_{os.getpid()}_{random.randrange(10**9)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


def ingest(calls: int, url: str | None) -> dict[str, Any]:
    import paid_hooks
    from paid_hooks.ledger import open_ledger

    tmp = scratch_dir()
    base_url = url
    postgres = url is not None and url.startswith("postgres")
    url = _fresh_postgres_url(url) if postgres and url else url or f"sqlite:///{tmp}/ledger.db"
    produce = _producer(url)
    produce(0, _WARMUP)  # warm-up: price table loaded, ledger created
    paid_hooks.flush(120)
    t0 = time.perf_counter()
    c0 = time.thread_time()
    produce(_WARMUP, calls)
    produced = time.perf_counter() - t0
    producer_cpu = time.thread_time() - c0
    paid_hooks.flush(600)
    elapsed = time.perf_counter() - t0
    rows = len(open_ledger(url).calls())
    from paid_hooks import _runtime

    yields = _runtime.get_runtime().pipeline.yields
    paid_hooks.shutdown()
    out = {
        "backend": url.split(":", 1)[0],
        "calls": calls,
        "rows": rows,
        "expected_rows": calls + _WARMUP,
        "calls_per_s": calls / elapsed,
        "producer_calls_per_s": calls / produced,
        "producer_cpu_us_per_call": producer_cpu / calls * 1e6,
        "producer_yields_to_worker": yields,
    }
    out.update(_write_rate(_fresh_postgres_url(base_url) if postgres and base_url else
                           f"sqlite:///{tmp}/write-only.db", min(calls, 200_000)))
    return out


def _records(n: int, first_trace: int = 0, calls_per_trace: int = 10,
             signals: bool = False) -> tuple[list[Any], list[Any]]:
    """Ready-made ledger records: n calls in traces of ``calls_per_trace``."""
    from paid_hooks import AICall, CostStatus, Price, PricedCall, SignalRecord, Usage

    models = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash")
    now = time.time_ns()
    calls: list[Any] = []
    sigs: list[Any] = []
    rng = random.Random(1234 + first_trace)
    trace_ids: dict[int, int] = {}  # random 128-bit trace ids, as OpenTelemetry makes them
    for i in range(n):
        t = first_trace + i // calls_per_trace
        trace_id = trace_ids.setdefault(t, rng.getrandbits(128))
        model = models[i % len(models)]
        status = CostStatus.PRICED
        price: Any = Price(Decimal(rng.randrange(1, 10**7)) / Decimal(10**9),
                           price_source="genai-prices 0.2.3")
        if i % 50 == 7:
            status, price = CostStatus.UNPRICED, None
        elif i % 100 == 13:
            status, price = CostStatus.USAGE_UNKNOWN, None
        usage = None if status is CostStatus.USAGE_UNKNOWN else Usage(
            input_tokens=800 + i % 997, output_tokens=100 + i % 331)
        call = AICall("openai", "chat", model, model, usage, "bench",
                      now + i * 1000, now + i * 1000 + 500_000, response_id=f"resp-{i}")
        calls.append(PricedCall(call, trace_id, rng.getrandbits(64), f"cust-{t % 1000}",
                                f"agent-{t % 20}",
                                status, price, None if price else "unknown_model"))
        if signals and i % calls_per_trace == calls_per_trace - 1:
            sigs.append(SignalRecord(
                event_name=("meeting_booked", "email_sent", "lead_scored")[t % 3],
                external_customer_id=f"cust-{t % 1000}", external_agent_id=f"agent-{t % 20}",
                trace_id=trace_id, idempotency_key=f"sig-{t}",
                enable_cost_tracing=t % 20 != 0, timestamp_ns=now + i * 1000 + 600_000,
                span_id=rng.getrandbits(64)))
    return calls, sigs


def _write_rate(url: str, n: int) -> dict[str, Any]:
    from paid_hooks.ledger import open_ledger

    ledger = open_ledger(url)
    calls, _ = _records(n, first_trace=10**9)
    t0 = time.perf_counter()
    for i in range(0, n, 8192):
        ledger.write(calls[i:i + 8192], [])
    elapsed = time.perf_counter() - t0
    return {"write_only_calls_per_s": n / elapsed, "write_only_calls": n}


def reports(calls: int, signals: int) -> dict[str, Any]:
    from paid_hooks.cli import cost_rows
    from paid_hooks.ledger import open_ledger

    tmp = scratch_dir()
    url = f"sqlite:///{tmp}/ledger.db"
    ledger = open_ledger(url)
    per_trace = max(1, calls // signals)
    t0 = time.perf_counter()
    chunk = 100_000
    for first in range(0, calls, chunk):
        n = min(chunk, calls - first)
        recs, sigs = _records(n, first_trace=first // per_trace, calls_per_trace=per_trace,
                              signals=True)
        for i in range(0, len(recs), 4096):
            ledger.write(recs[i:i + 4096], [])
        ledger.write([], sigs)
    build_s = time.perf_counter() - t0
    timings: dict[str, list[float]] = {"signals_query": [], "costs_by_customer_query": [],
                                       "cli_signals_json": [], "cli_costs_by_customer": []}
    sizes: dict[str, int] = {}
    env = {**os.environ, "COLUMNS": "120"}
    for _ in range(3):
        fresh = open_ledger(url)
        t = time.perf_counter()
        sizes["signals_rows"] = len(fresh.signals())
        timings["signals_query"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sizes["costs_rows"] = len(cost_rows(fresh, "customer"))
        timings["costs_by_customer_query"].append(time.perf_counter() - t)
        fresh.close()
        for name, args in (("cli_signals_json", ["signals", "--json"]),
                           ("cli_costs_by_customer", ["costs", "--by", "customer"])):
            t = time.perf_counter()
            subprocess.run([PYTHON, "-m", "paid_hooks.cli", *args, "--ledger", url],
                           check=True, stdout=subprocess.DEVNULL, env=env)
            timings[name].append(time.perf_counter() - t)
    return {"calls": calls, "signals": signals, "build_s": build_s, **sizes,
            **{f"{k}_s": statistics.median(v) for k, v in timings.items()},
            "raw_s": timings}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(traces: int) -> dict[str, Any]:
    import paid_hooks

    tmp = scratch_dir()
    paid_hooks.initialize_tracing(ledger=f"sqlite:///{tmp}/ledger.db")

    async def one(i: int) -> None:
        async with paid_hooks.paid_tracing(f"cust-{i % 1000}", external_agent_id="agent"):
            handle = paid_hooks.start_call(provider="openai", operation="chat",
                                           request_model="gpt-4o-mini", captured_by="bench")
            await asyncio.sleep(0)
            handle.finish(_usage(i), response_model="gpt-4o-mini-2024-07-18",
                          response_id=f"resp-{i}")
            paid_hooks.signal("done", enable_cost_tracing=True)

    from paid_hooks import _pipeline, _runtime

    pipeline = _runtime.get_runtime().pipeline
    peak = [0]

    async def run(first: int, n: int) -> None:
        for start in range(first, first + n, 500):
            await asyncio.gather(*(one(i) for i in range(start, min(first + n, start + 500))))
            peak[0] = max(peak[0], pipeline.waiting)

    def settle() -> tuple[float, int]:
        paid_hooks.flush(600)
        gc.collect()
        return _rss_mb(), sys.getallocatedblocks()

    asyncio.run(run(0, 10_000))
    before, blocks_before = settle()
    peak[0] = 0
    t0 = time.perf_counter()
    asyncio.run(run(10_000, traces))
    elapsed = time.perf_counter() - t0
    rss_before_drain = _rss_mb()
    after, blocks_after = settle()
    return {"traces": traces, "rss_before_mb": before, "rss_after_mb": after,
            "growth_mb": after - before, "rss_before_drain_mb": rss_before_drain,
            "peak_queued_records": peak[0],
            "python_blocks_retained_per_trace": (blocks_after - blocks_before) / traces,
            "pending_side_table": len(_pipeline.PENDING), "traces_per_s": traces / elapsed,
            "producer_yields_to_worker": _runtime.get_runtime().pipeline.yields}


_IMPORT_PROBE = """
import socket, sys, time
def _no_socket(*a, **k):
    raise RuntimeError("network used during import")
socket.socket = _no_socket
socket.create_connection = _no_socket
t = time.perf_counter()
import paid_hooks
elapsed = time.perf_counter() - t
print(elapsed, int("genai_prices" in sys.modules), int("genai_prices.data" in sys.modules))
"""


def import_time() -> dict[str, Any]:
    samples: list[float] = []
    genai = prices = 0
    for _ in range(7):
        out = subprocess.run([PYTHON, "-c", _IMPORT_PROBE], check=True, capture_output=True,
                             text=True).stdout.split()
        samples.append(float(out[0]))
        genai, prices = int(out[1]), int(out[2])
    baseline = []
    for _ in range(7):
        out = subprocess.run([PYTHON, "-c", "import time; t = time.perf_counter(); "
                              "import opentelemetry.sdk.trace; print(time.perf_counter() - t)"],
                             check=True, capture_output=True, text=True).stdout
        baseline.append(float(out))
    return {"import_s": statistics.median(samples), "raw_s": samples,
            "otel_sdk_import_s": statistics.median(baseline),
            "genai_prices_imported": bool(genai), "price_table_loaded": bool(prices),
            "network_during_import": False}


def pricing(calls: int) -> dict[str, Any]:
    import genai_prices

    from paid_hooks import AICall, Price, Usage
    from paid_hooks.pricing import BuiltinPricing

    builtin = BuiltinPricing()
    builtin.load()
    models = (("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"),
              ("gcp.gemini", "gemini-2.5-flash"))
    now = time.time_ns()
    out: dict[str, Any] = {"calls": calls}
    for provider, model in models:
        records = [AICall(provider, "chat", model, model,
                          Usage(input_tokens=800 + i % 997, output_tokens=100 + i % 331,
                                cache_read_tokens=(i % 5) * 64), "bench", now, now)
                   for i in range(calls)]
        gp_provider = {"openai": "openai", "anthropic": "anthropic", "gcp.gemini": "google"}
        for r in records[:200]:
            builtin.price_call(r)
        t = time.perf_counter()
        ours = [builtin.price_call(r) for r in records]
        ours_us = (time.perf_counter() - t) / calls * 1e6
        t = time.perf_counter()
        theirs = [genai_prices.calc_price(
            genai_prices.Usage(input_tokens=r.usage.input_tokens,  # type: ignore[union-attr]
                               output_tokens=r.usage.output_tokens,  # type: ignore[union-attr]
                               cache_read_tokens=r.usage.cache_read_tokens),  # type: ignore[union-attr]
            model, provider_id=gp_provider[provider]).total_price for r in records]
        theirs_us = (time.perf_counter() - t) / calls * 1e6
        equal = all(isinstance(a, Price) and a.amount == b for a, b in zip(ours, theirs,
                                                                           strict=True))
        out[model] = {"paid_hooks_us": ours_us, "genai_prices_calc_price_us": theirs_us,
                      "identical": equal}
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--calls", type=int, default=200_000)
    p.add_argument("--url")
    p.add_argument("--processes", type=int, default=1,
                   help="producer processes writing one SQLite ledger at once")
    p = sub.add_parser("ingest-child")
    p.add_argument("--url", required=True)
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--calls", type=int, required=True)
    p = sub.add_parser("reports")
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--signals", type=int, default=100_000)
    p = sub.add_parser("memory")
    p.add_argument("--traces", type=int, default=100_000)
    sub.add_parser("import")
    p = sub.add_parser("pricing")
    p.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args(argv)
    if args.command == "ingest-child":
        ingest_child(args.url, args.first, args.calls)
        return
    if args.command == "ingest":
        result = (ingest_processes(args.calls, args.processes) if args.processes > 1
                  else ingest(args.calls, args.url))
    elif args.command == "reports":
        result = reports(args.calls, args.signals)
    elif args.command == "memory":
        result = memory(args.traces)
    elif args.command == "import":
        result = import_time()
    else:
        result = pricing(args.calls)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
