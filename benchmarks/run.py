"""paid-hooks benchmarks: overhead against the bare SDKs and against peers, in one run.

    .venv/bin/python benchmarks/run.py            # full run (about 15-25 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --quick    # smoke run (about 2 minutes)
    tox -e bench                                  # the same, with the peers installed

Every per-call measurement runs in fresh processes (one per contender and run; contenders
are interleaved run by run), with warm-up calls first. Each process alternates the bare
SDK and one contender call by call, so that what makes one process or one moment faster
than another hits both alike; the overhead is the median of the paired differences. The
tables report, per contender, the median over runs of each process's medians, p99s and
overhead, the raw numbers next to the overhead and the ratio against the bare SDK, and the
spread of the overhead over runs. ``bare`` against itself is the control. Everything goes
over ``httpx.MockTransport`` or in-process fakes: nothing leaves the machine. Peers that
are not installed are reported as such. The raw per-run results are written to ``--out``
(JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
TARGET_OVERHEAD_US = 50.0
TARGET_INGEST = 50_000
TARGET_REPORT_S = 1.0
TARGET_MEMORY_MB = 20.0

PEER_PACKAGES = {
    "openinference": {"openai": "openinference-instrumentation-openai",
                      "anthropic": "openinference-instrumentation-anthropic"},
    "openllmetry": {"openai": "opentelemetry-instrumentation-openai",
                    "anthropic": "opentelemetry-instrumentation-anthropic"},
}
VERSIONS = ("paid-hooks", "openai", "anthropic", "httpx", "opentelemetry-sdk", "genai-prices",
            "langchain-core", "openai-agents", "openinference-instrumentation-openai",
            "openinference-instrumentation-anthropic", "opentelemetry-instrumentation-openai",
            "opentelemetry-instrumentation-anthropic", "langfuse")


def _installed(package: str) -> bool:
    try:
        metadata.version(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def _child(script: str, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run one benchmark process; its last stdout line is its JSON result."""
    proc = subprocess.run([PYTHON, str(HERE / script), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=HERE.parent,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{tail}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo") as fh:
            memory_gb = round(int(fh.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    versions = {}
    for package in VERSIONS:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gb": memory_gb,
            "python": platform.python_version(), "platform": platform.platform(),
            "load_at_start": load, "versions": versions}


# -- per-call overhead ------------------------------------------------------------------


def _paired_runs(label: str, provider: str, contenders: list[str], runs: int, calls: int,
                 warmup: int, *extra: str, script: str = "_calls.py",
                 group_flag: str = "--provider") -> dict[str, list[dict[str, Any]]]:
    """``runs`` processes of ``script`` per contender, contenders rotated run by run
    (``group_flag provider``: the SDK, or the framework case); ``extra``: more arguments
    for every process."""
    per_run: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for run in range(runs):
        order = contenders[run % len(contenders):] + contenders[:run % len(contenders)]
        for contender in order:
            _log(f"{label}: {provider} {contender} run {run + 1}/{runs}")
            per_run[contender].append(_child(
                script, group_flag, provider, "--contender", contender,
                "--calls", str(calls), "--warmup", str(warmup), *extra))
    return per_run


def calls_section(runs: int, calls: int, warmup: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for provider in ("openai", "anthropic"):
        contenders = ["bare", "wrapper", "auto", "httpx"]
        missing = []
        for peer, packages in PEER_PACKAGES.items():
            if _installed(packages[provider]):
                contenders.append(peer)
            else:
                missing.append(f"{peer} ({packages[provider]} not installed)")
        results[provider] = {"runs": _paired_runs("calls", provider, contenders, runs, calls,
                                                  warmup),
                             "not_measured": missing}
    return results


IDLE_GAP_MS = 3
"""The sleep before every call in the ``idle`` section."""


def idle_section(runs: int, calls: int, warmup: int) -> dict[str, Any]:
    """OpenAI sync calls, each after an idle gap (:data:`IDLE_GAP_MS` of sleep before every
    timed call of both arms), as calls come in an application whose thread waits on the
    network between them: the same code, run on a core whose caches and clock are no
    longer warm for it. Explanatory: not one of the target's workloads."""
    contenders = ["bare", "wrapper", "auto", "httpx"]
    contenders += [peer for peer, packages in PEER_PACKAGES.items()
                   if _installed(packages["openai"])]
    per_run = _paired_runs("idle", "openai", contenders, runs, calls, warmup,
                           "--workloads", "sync", "--idle-ms", str(IDLE_GAP_MS))
    return {f"openai, {IDLE_GAP_MS} ms idle before each call":
            {"runs": per_run, "not_measured": []}}


def instructions_section(calls: int, warmup: int) -> dict[str, Any]:
    """Instructions per call under callgrind (two valgrind processes at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(HERE))
    import _instructions

    reason = _instructions.available()
    if reason is not None:
        return {"not_measured": reason}
    jobs = []
    for provider in ("openai", "anthropic"):
        contenders = ["bare", "wrapper", "auto", "httpx"] + [
            peer for peer, packages in PEER_PACKAGES.items() if _installed(packages[provider])]
        jobs += [(provider, contender, workload) for contender in contenders
                 for workload in ("sync", "stream", "async")]
    for framework, workload in _instructions.FRAMEWORKS.items():
        jobs += [(framework, contender, workload) for contender in ("bare", "paid")]

    def one(job: tuple[str, str, str]) -> tuple[tuple[str, str, str], dict[str, Any]]:
        provider, contender, workload = job
        _log(f"instructions: {provider} {contender} {workload}")
        result = _child("_instructions.py", "--provider", provider, "--contender", contender,
                        "--workloads", workload, "--calls", str(calls), "--warmup",
                        str(warmup), timeout=3600)
        return job, result["workloads"][workload]

    out: dict[str, Any] = {"calls": calls, "warmup": warmup, "results": {}}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for (provider, contender, workload), counts in pool.map(one, jobs):
            out["results"].setdefault(provider, {}).setdefault(workload, {})[contender] = counts
    return out


def instructions_table(section: dict[str, Any]) -> str:
    """Overhead in instructions per call (callgrind): deterministic, but not time.

    No conversion to µs: an instruction of ours runs slower than one of the SDK's (ours
    run once per call, between the SDK's, on cold caches), so the SDK's instructions per
    µs would understate our time; the wall-clock table is the verdict."""
    if "not_measured" in section:
        return f"Instruction counts: not measured ({section['not_measured']})."
    lines = [
        "| SDK | workload | contender | instructions per call | overhead: caller thread | "
        "overhead: background threads | overhead: total |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for provider, workloads in section["results"].items():
        for workload, contenders in workloads.items():
            bare = contenders["bare"]
            for contender, counts in contenders.items():
                if contender == "bare":
                    lines.append(f"| {provider} | {workload} | bare | "
                                 f"{bare['instructions_per_call']:,.0f} | — | — | — |")
                    continue
                caller = (counts["caller_instructions_per_call"]
                          - bare["caller_instructions_per_call"])
                background = (counts["background_instructions_per_call"]
                              - bare["background_instructions_per_call"])
                lines.append(
                    f"| {provider} | {workload} | {contender} | "
                    f"{counts['instructions_per_call']:,.0f} | {caller:,.0f} | "
                    f"{background:,.0f} | {caller + background:,.0f} |")
    return "\n".join(lines)


def frameworks_section(runs: int, calls: int, warmup: int) -> dict[str, Any]:
    cases = {"langchain": ["paid"] + (["langfuse"] if _installed("langfuse") else []),
             "agents": ["paid"]}
    results: dict[str, Any] = {}
    for case, contenders in cases.items():
        n = calls if case == "langchain" else max(100, calls // 4)
        per_run = _paired_runs("frameworks", case, contenders, runs, n, warmup,
                               script="_frameworks.py", group_flag="--case")
        results[case] = {"runs": per_run,
                         "not_measured": [] if "langfuse" in contenders or case != "langchain"
                         else ["langfuse (not installed)"]}
    return results


def overhead_rows(section: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (group, workload, contender): medians over runs of each process's
    paired statistics (every process alternates the bare SDK and one contender)."""
    rows = []
    for group, data in section.items():
        for contender, runs in data["runs"].items():
            for workload in runs[0]["workloads"]:
                stats = [r["workloads"][workload] for r in runs]

                def med(*keys: str, stats: list[dict[str, Any]] = stats) -> float:
                    values = []
                    for item in stats:
                        for key in keys:
                            item = item[key]
                        values.append(item)
                    return statistics.median(values)

                overheads = [item["overhead_us"] for item in stats]
                rows.append({
                    "group": group, "workload": workload, "contender": contender,
                    "bare_median_us": med("bare", "median_us"),
                    "median_us": med("contender", "median_us"),
                    "bare_p99_us": med("bare", "p99_us"),
                    "p99_us": med("contender", "p99_us"),
                    "bare_cpu_median_us": med("bare", "cpu_median_us"),
                    "overhead_us": statistics.median(overheads),
                    "overhead_spread_us": (min(overheads), max(overheads)),
                    "p99_overhead_us": med("p99_overhead_us"),
                    "cpu_overhead_us": med("cpu_overhead_us"),
                    "background_cpu_us": med("background_cpu_us"),
                    "ratio": med("ratio"),
                    "checks": [r.get("checks") for r in runs],
                })
    return rows


def _check_summary(rows: list[dict[str, Any]]) -> list[str]:
    problems = []
    for row in rows:
        for check in row["checks"]:
            if not check:
                continue
            name = f"{row['group']}/{row['contender']}"
            if "spans" in check:  # a peer: one span per call, none from the bare arm
                if check["spans"] != check["expected_spans"]:
                    problems.append(f"{name}: {check['spans']} spans, expected "
                                    f"{check['expected_spans']}")
                continue
            if check["rows"] != check["expected_rows"]:
                problems.append(f"{name}: {check['rows']} ledger rows, "
                                f"expected {check['expected_rows']}")
            if check["priced_on_caller_thread"]:
                problems.append(f"{name}: priced on the caller's thread")
            if set(check["cost_status"]) != {"priced"}:
                problems.append(f"{name}: {check['cost_status']}")
    return sorted(set(problems))


def _ingest_problems(items: list[dict[str, Any]]) -> list[str]:
    """Ingest runs whose ledger does not hold exactly one row per recorded call."""
    return [f"ingest {item['backend']}: {run['rows']} ledger rows, expected "
            f"{run['expected_rows']}"
            for item in items for run in item.get("runs", ())
            if run["rows"] != run["expected_rows"]]


# -- tables -----------------------------------------------------------------------------


def _us(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def calls_table(rows: list[dict[str, Any]], verdicts: bool = True) -> str:
    """The paired wall-clock table; ``verdicts=False`` (an explanatory measurement, not
    one of the issue's workloads) puts "(explanatory)" in the last column."""
    lines = [
        "| SDK | workload | contender | bare median µs | median µs | overhead µs (median) | "
        "overhead over runs µs | bare p99 µs | p99 µs | p99 overhead µs | "
        "caller CPU overhead µs | background CPU µs | ratio | ≤ 50 µs |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["contender"] == "bare":
            verdict = "(A/A control)"
        elif not verdicts:
            verdict = "(explanatory)"
        elif r["contender"] in ("openinference", "openllmetry", "langfuse"):
            verdict = "(peer)"
        else:
            verdict = "met" if r["overhead_us"] <= TARGET_OVERHEAD_US else "**missed**"
        spread = r["overhead_spread_us"]
        lines.append(
            f"| {r['group']} | {r['workload']} | {r['contender']} | {_us(r['bare_median_us'])} | "
            f"{_us(r['median_us'])} | {_us(r['overhead_us'])} | "
            f"{_us(spread[0])} to {_us(spread[1])} | {_us(r['bare_p99_us'])} | "
            f"{_us(r['p99_us'])} | {_us(r['p99_overhead_us'])} | {_us(r['cpu_overhead_us'])} | "
            f"{_us(r['background_cpu_us'])} | {r['ratio']:.3f} | {verdict} |")
    return "\n".join(lines)


def other_tables(results: dict[str, Any]) -> str:
    out: list[str] = []
    ingest = results.get("ingest")
    if ingest:
        out += ["| ledger | calls | end-to-end calls/s (start_call → priced row) | "
                "producer alone calls/s | ledger write() calls/s | ≥ 50,000/s |",
                "|---|---:|---:|---:|---:|---|"]
        for item in ingest:
            if "error" in item:
                out.append(f"| {item['backend']} | not measured: {item['error']} | | | | |")
                continue
            e2e = statistics.median(r["calls_per_s"] for r in item["runs"])
            if item.get("processes"):
                out.append(f"| {item['backend']}, {item['processes']} producer processes "
                           f"(one per core) | {item['runs'][0]['calls']:,} | {e2e:,.0f} | | | "
                           f"end-to-end: {'met' if e2e >= TARGET_INGEST else '**missed**'} |")
                continue
            prod = statistics.median(r["producer_calls_per_s"] for r in item["runs"])
            write = statistics.median(r["write_only_calls_per_s"] for r in item["runs"])
            verdict = (f"write(): {'met' if write >= TARGET_INGEST else '**missed**'}; "
                       f"end-to-end: {'met' if e2e >= TARGET_INGEST else '**missed**'}")
            out.append(f"| {item['backend']} | {item['runs'][0]['calls']:,} | {e2e:,.0f} | "
                       f"{prod:,.0f} | {write:,.0f} | {verdict} |")
        out.append("")
    reports = results.get("reports")
    if reports:
        out += [f"Reports over {reports['calls']:,} calls and {reports['signals']:,} signals "
                f"(SQLite; median of 3):", "",
                "| report | seconds | < 1 s |", "|---|---:|---|"]
        for key, label in (("signals_query_s", "ledger.signals() (all signals)"),
                           ("costs_by_customer_query_s", "costs --by customer rows"),
                           ("cli_signals_json_s", "`paid-hooks signals --json` (CLI, whole)"),
                           ("cli_costs_by_customer_s", "`paid-hooks costs --by customer` (CLI)")):
            value = reports[key]
            out.append(f"| {label} | {value:.2f} | "
                       f"{'met' if value < TARGET_REPORT_S else '**missed**'} |")
        out.append("")
    memory = results.get("memory")
    if memory:
        growth = statistics.median(r["growth_mb"] for r in memory)
        each = ", ".join(f"{r['growth_mb']:.1f}" for r in memory)
        out += ["| memory | value | target |", "|---|---:|---|",
                f"| RSS growth after {memory[0]['traces']:,} traces (after 10,000 warm-up) | "
                f"{growth:.1f} MB (runs: {each}) | "
                f"< 20 MB: {'met' if growth < TARGET_MEMORY_MB else '**missed**'} |",
                f"| records queued for the worker at peak / Python heap blocks retained per "
                f"trace after the drain | "
                f"{statistics.median(r['peak_queued_records'] for r in memory):,.0f} / "
                f"{statistics.median(r['python_blocks_retained_per_trace'] for r in memory):.2f}"
                " | no per-trace state left behind |"]
    imp = results.get("import")
    if imp:
        out += [f"| `import paid_hooks` | {imp['import_s'] * 1000:.0f} ms "
                f"(opentelemetry-sdk alone: {imp['otel_sdk_import_s'] * 1000:.0f} ms) | "
                f"genai-prices imported: {imp['genai_prices_imported']}, price table loaded: "
                f"{imp['price_table_loaded']}, network: {imp['network_during_import']} |"]
    out.append("")
    pricing = results.get("pricing")
    if pricing:
        out += ["| pricing one call (worker thread) | paid-hooks µs | genai_prices.calc_price µs "
                "| identical |", "|---|---:|---:|---|"]
        for model, item in pricing.items():
            if isinstance(item, dict):
                out.append(f"| {model} | {item['paid_hooks_us']:.1f} | "
                           f"{item['genai_prices_calc_price_us']:.1f} | {item['identical']} |")
    return "\n".join(out)


# -- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few runs, few calls (smoke)")
    parser.add_argument("--runs", type=int, help="runs per contender (default 5; quick 2)")
    parser.add_argument("--calls", type=int, help="timed calls per run (default 2000)")
    parser.add_argument("--sections", default="calls,idle,instructions,frameworks,ingest,"
                        "reports,memory,import,pricing", help="comma-separated subset")
    parser.add_argument("--out", default=str(HERE / "results.json"),
                        help="where to write the raw results (JSON)")
    args = parser.parse_args(argv)
    quick = args.quick
    runs = args.runs or (2 if quick else 5)
    calls = args.calls or (300 if quick else 2000)
    warmup = 50 if quick else 300
    sections = set(args.sections.split(","))
    started = time.time()
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "runs": runs,
                               "calls_per_run": calls, "warmup": warmup,
                               "command": " ".join([Path(PYTHON).name, "benchmarks/run.py",
                                                    *(argv if argv is not None
                                                      else sys.argv[1:])])}
    if "calls" in sections:
        results["calls"] = calls_section(runs, calls, warmup)
    if "idle" in sections:
        results["idle"] = idle_section(runs, calls, warmup)
    if "instructions" in sections:
        results["instructions"] = instructions_section(50 if quick else 200,
                                                       20 if quick else 100)
    if "frameworks" in sections:
        results["frameworks"] = frameworks_section(runs, calls, warmup // 2)
    if "ingest" in sections:
        n = 20_000 if quick else 200_000
        items = []
        urls = [("sqlite", None)]
        pg = os.environ.get("PAID_HOOKS_TEST_POSTGRES_URL")
        if pg:
            urls.append(("postgresql", pg))
        for backend, url in urls:
            try:
                item_runs = []
                for run in range(1 if quick else 3):
                    _log(f"ingest: {backend} run {run + 1}")
                    item_runs.append(_child("_ledger.py", "ingest", "--calls", str(n),
                                            *(["--url", url] if url else [])))
                items.append({"backend": backend, "runs": item_runs})
            except Exception as exc:
                items.append({"backend": backend, "error": str(exc).splitlines()[-1][:200]})
        if not pg:
            items.append({"backend": "postgresql",
                          "error": "PAID_HOOKS_TEST_POSTGRES_URL not set"})
        processes = os.cpu_count() or 1
        if processes > 1:
            item_runs = []
            for run in range(1 if quick else 3):
                _log(f"ingest: sqlite, {processes} processes, run {run + 1}")
                item_runs.append(_child("_ledger.py", "ingest", "--calls", str(n),
                                        "--processes", str(processes)))
            items.append({"backend": "sqlite", "processes": processes, "runs": item_runs})
        results["ingest"] = items
    if "reports" in sections:
        _log("reports: building the ledger")
        results["reports"] = _child("_ledger.py", "reports",
                                    "--calls", str(100_000 if quick else 1_000_000),
                                    "--signals", str(10_000 if quick else 100_000))
    if "memory" in sections:
        results["memory"] = []
        for run in range(1 if quick else 3):
            _log(f"memory: run {run + 1}")
            results["memory"].append(_child("_ledger.py", "memory", "--traces",
                                            str(20_000 if quick else 100_000)))
    if "import" in sections:
        _log("import time")
        results["import"] = _child("_ledger.py", "import")
    if "pricing" in sections:
        _log("pricing")
        results["pricing"] = _child("_ledger.py", "pricing", "--calls",
                                    str(2_000 if quick else 20_000))
    results["machine"]["load_at_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    results["elapsed_s"] = time.time() - started

    call_rows = overhead_rows(results["calls"]) if "calls" in results else []
    framework_rows = overhead_rows(results["frameworks"]) if "frameworks" in results else []
    idle_rows = overhead_rows(results["idle"]) if "idle" in results else []
    results["summary"] = {"calls": call_rows, "frameworks": framework_rows, "idle": idle_rows,
                          "problems": _check_summary(call_rows + framework_rows + idle_rows)
                          + _ingest_problems(results.get("ingest", []))}
    Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    m = results["machine"]
    print(f"# paid-hooks benchmark ({'quick' if quick else 'full'}: {runs} runs of {calls} "
          f"calls, {warmup} warm-up)\n")
    print(f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}; "
          f"load average at start {m['load_at_start']}, at end {m['load_at_end']}; "
          f"{results['elapsed_s'] / 60:.1f} min\n")
    if call_rows:
        print(calls_table(call_rows) + "\n")
    if idle_rows:
        print(calls_table(idle_rows, verdicts=False) + "\n")
    if "instructions" in results:
        print(instructions_table(results["instructions"]) + "\n")
    if framework_rows:
        print(calls_table(framework_rows) + "\n")
    for section in ("calls", "frameworks"):
        for group, data in results.get(section, {}).items():
            for missing in data.get("not_measured", []):
                print(f"- {group}: not measured: {missing}")
    print(other_tables(results))
    problems = results["summary"]["problems"]
    print("\nChecks: " + ("every paid-hooks call was recorded exactly once, priced, and priced "
                          "off the caller's thread" if not problems else "; ".join(problems)))
    print(f"\nRaw results: {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
