"""Per-call cost in CPU instructions (valgrind's callgrind): immune to a busy machine.

Wall-clock medians on a shared 2-core machine move by 100 µs or more from run to run;
an instruction count does not (the same code path executes the same instructions,
whatever else the machine is doing). This measures, for each contender and workload,
the instructions executed per call by the WHOLE process (the caller's thread, the
paid-hooks pipeline worker pricing and writing the ledger, span processor threads),
between a start and a stop marker placed around ``--calls`` calls made after a warm-up
(and after the warm-up's background work was drained). The background work of the timed
calls is drained before the stop marker, so it is counted in full. One valgrind process
per contender and workload. valgrind runs the program some 30-60x slower, which would
leave fewer calls in each of the pipeline's time windows (a burst's gathering, the ledger
write buffer) than in a real run and charge each call more of the per-batch work: the
windows are stretched by the slowdown measured against a native run of the same child.

Run by ``run.py`` (section ``instructions``; needs ``valgrind`` and a C compiler with
``valgrind/callgrind.h``, else the section reports itself not measured)::

    python benchmarks/_instructions.py --provider openai --contender wrapper
    python benchmarks/_instructions.py --provider agents --contender paid --workloads run

prints one JSON object: instructions per call, per workload: in total, on the caller's
thread, and on every other thread.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FRAMEWORKS = {"langchain": "invoke", "agents": "run"}
"""The framework workloads (``_frameworks.py``; contenders ``bare`` and ``paid``) and the
name of each one's single workload."""

_MARKERS_C = r"""
#include <valgrind/callgrind.h>
void bench_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void bench_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def available() -> str | None:
    """Why the instruction counts cannot be measured here, or ``None`` when they can."""
    if shutil.which("valgrind") is None:
        return "valgrind not installed"
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        return "no C compiler"
    if not Path("/usr/include/valgrind/callgrind.h").exists():
        return "valgrind/callgrind.h not found"
    return None


def _markers(directory: str) -> ctypes.CDLL:
    source = Path(directory) / "markers.c"
    library = Path(directory) / "markers.so"
    if not library.exists():
        source.write_text(_MARKERS_C)
        compiler = shutil.which("cc") or "gcc"
        subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(source)],
                       check=True)
    return ctypes.CDLL(str(library))


def child(provider: str, contender: str, calls: int, warmup: int, workload: str,
          build_dir: str, native_wall: float | None = None) -> None:
    """Inside valgrind: set up as ``_calls.py`` does, then count one workload's calls.

    Outside valgrind (``native_wall`` is None): print the wall time per call of the
    second half of the warm-up, and stop. Inside it, with ``native_wall`` that time
    measured natively: the pipeline's time windows (how long the worker lets a burst
    gather, how long it buffers ledger rows) are stretched by the slowdown valgrind
    causes, so that a window holds as many calls as it does in a real run, and the
    worker's per-batch work is shared by as many calls.
    """
    import asyncio
    import time

    import _calls

    lib = _markers(build_dir)
    from _mock import scratch_dir

    tmp = scratch_dir()
    paid = contender in _calls.PAID or contender == "paid"
    if paid:
        import paid_hooks

        paid_hooks.initialize_tracing(ledger=f"sqlite:///{tmp}/ledger.db")
        if contender == "auto":
            paid_hooks.instrument(provider)
    elif contender in _calls.PEERS:
        tracer_provider = _calls._instrument_peer(provider, contender)
    if provider in FRAMEWORKS:
        import _frameworks

        fn = (_frameworks._langchain(contender) if provider == "langchain"
              else _frameworks._agents(contender))
    else:
        sync_client, async_client = _calls._clients(provider, contender)
        fn = _calls._call_functions(provider, sync_client, async_client)[workload]
    if paid:
        import paid_hooks

        paid_hooks.paid_tracing("bench-customer", external_agent_id="bench-agent").__enter__()

    def drain() -> None:
        if paid:
            import paid_hooks

            paid_hooks.flush(600)
        elif contender in _calls.PEERS:
            tracer_provider.force_flush()

    async def run(n: int) -> None:
        for _ in range(n):
            await fn()

    def calls_of(n: int) -> None:
        if workload in ("async", "run"):  # "run": an OpenAI Agents run (a coroutine)
            asyncio.run(run(n))
        else:
            for _ in range(n):
                fn()

    calls_of(warmup - warmup // 2)
    started = time.perf_counter()
    calls_of(warmup // 2)
    wall = (time.perf_counter() - started) / max(1, warmup // 2)
    if native_wall is None:
        sys.stdout.write(json.dumps({"wall_per_call_s": wall}) + "\n")
        return
    if paid:
        import paid_hooks._pipeline as pipeline

        slowdown = max(1.0, wall / native_wall)
        pipeline.GATHER_S *= slowdown
        pipeline.DIRECT_WRITE_DELAY_S *= slowdown
    drain()
    lib.bench_start()
    calls_of(calls)
    drain()
    lib.bench_stop()


_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def _per_thread(directory: str) -> dict[str, int]:
    """Instructions counted per thread (callgrind writes one file per thread at exit)."""
    out: dict[str, int] = {}
    for path in sorted(Path(directory).glob("callgrind.out-*")):
        total = _TOTALS.search(path.read_text(errors="replace"))
        if total is not None:
            out[path.name.rsplit("-", 1)[1]] = int(total.group(1))
    return out


def measure(provider: str, contender: str, calls: int, warmup: int,
            workload: str) -> dict[str, Any]:
    """One valgrind process: instructions per call of one contender and workload."""
    with tempfile.TemporaryDirectory(prefix="paid-hooks-cg-") as directory:
        _markers(directory)  # compile outside valgrind
        arguments = [
            __file__, "--child", "--provider", provider, "--contender", contender,
            "--calls", str(calls), "--warmup", str(warmup),
            "--workloads", workload, "--build-dir", directory,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        native = subprocess.run([sys.executable, *arguments], check=True, env=env,
                                capture_output=True, text=True, timeout=600)
        native_wall = json.loads(native.stdout.splitlines()[-1])["wall_per_call_s"]
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
            f"--callgrind-out-file={directory}/callgrind.out", sys.executable, *arguments,
            "--native-wall", repr(native_wall),
        ]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=3600)
        threads = _per_thread(directory)
    caller = threads.get("01", 0)
    return {
        "instructions_per_call": sum(threads.values()) / calls,
        "caller_instructions_per_call": caller / calls,
        "background_instructions_per_call": (sum(threads.values()) - caller) / calls,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=("openai", "anthropic", *FRAMEWORKS),
                        required=True)
    parser.add_argument("--contender", required=True)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--workloads", default="sync,stream,async")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build-dir", help=argparse.SUPPRESS)
    parser.add_argument("--native-wall", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workloads = args.workloads.split(",")
    if args.child:
        child(args.provider, args.contender, args.calls, args.warmup, workloads[0],
              args.build_dir, args.native_wall)
        return
    reason = available()
    if reason is not None:
        sys.stdout.write(json.dumps({"not_measured": reason}) + "\n")
        return
    result: dict[str, Any] = {"provider": args.provider, "contender": args.contender,
                              "calls": args.calls, "workloads": {}}
    for workload in workloads:
        result["workloads"][workload] = measure(args.provider, args.contender, args.calls,
                                                args.warmup, workload)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
