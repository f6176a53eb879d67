"""Set-up and tear-down: :func:`initialize_tracing`, :func:`flush`, :func:`shutdown`."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from paid_hooks import _pipeline, _plugins
from paid_hooks._version import __version__
from paid_hooks.attributes import SCOPE_NAME
from paid_hooks.ledger import LedgerSpanExporter, open_ledger
from paid_hooks.ledger.exporter import OwnSpansBatchProcessor
from paid_hooks.model import AICall, Price, PricedCall, SignalRecord, Unpriced
from paid_hooks.pricing import OVERRIDES, BuiltinPricing, load_price_overrides

__all__ = ["Runtime", "flush", "get_runtime", "initialize_tracing", "runtime_or_none", "shutdown"]

log = logging.getLogger("paid_hooks")

_lock = threading.RLock()
_runtime: Runtime | None = None
_atexit_registered = False


@dataclass
class Runtime:
    """Everything :func:`initialize_tracing` set up. One per process."""

    tracer_provider: Any
    owns_provider: bool
    tracer: trace.Tracer
    pipeline: _pipeline.Pipeline
    processors: list[BatchSpanProcessor]
    ledger_exporter: LedgerSpanExporter | None
    ledger_url: str | None
    strict: bool
    settings: dict[str, Any]


def runtime_or_none() -> Runtime | None:
    return _runtime


def get_runtime() -> Runtime:
    """The runtime, initialising with defaults on first use (the two-line change)."""
    runtime = _runtime
    if runtime is None:
        initialize_tracing()
        runtime = _runtime
        assert runtime is not None
    return runtime


def _price(call: AICall) -> Price | Unpriced | None:
    result: Price | Unpriced | None = _plugins.get_plugin_manager().hook.price_call(call=call)
    return result


def _price_builtin(builtin: BuiltinPricing, call: AICall) -> Price | Unpriced | None:
    """What ``hook.price_call`` answers when only the built-in sources are registered:
    the overrides first, then the bundled prices (without the dispatch's cost)."""
    if OVERRIDES.entries:
        answer = OVERRIDES.price_call(call)
        if answer is not None:
            return answer
    return builtin.price_call(call)


def _observe_call(record: PricedCall) -> None:
    try:
        _plugins.get_plugin_manager().hook.call_recorded(record=record)
    except Exception:
        log.warning("paid_hooks: a call_recorded hook failed", exc_info=True)


def _observe_signal(record: SignalRecord) -> None:
    try:
        _plugins.get_plugin_manager().hook.signal_recorded(record=record)
    except Exception:
        log.warning("paid_hooks: a signal_recorded hook failed", exc_info=True)


def _hooks() -> _pipeline.Hooks:
    """The worker's hooks for its next batch: plugin dispatch only where a plugin listens."""
    pm = _plugins.get_plugin_manager()
    hook = pm.hook
    builtin = pm.get_plugin("paid_hooks.pricing")
    price = _price
    if isinstance(builtin, BuiltinPricing) and not _plugins.hook_tracing_enabled():
        impls = hook.price_call.get_hookimpls()
        if all(impl.plugin is builtin or impl.plugin is OVERRIDES for impl in impls):
            # Overrides set while a batch is priced apply from the next batch on.
            price = (functools.partial(_price_builtin, builtin) if OVERRIDES.entries
                     else builtin.price_call)
    return _pipeline.Hooks(
        price=price,
        observe_call=_observe_call if hook.call_recorded.get_hookimpls() else None,
        observe_signal=_observe_signal if hook.signal_recorded.get_hookimpls() else None,
    )


def initialize_tracing(
    *,
    ledger: str | bool | None = None,
    tracer_provider: Any = None,
    otlp_endpoint: str | None = None,
    otlp_headers: dict[str, str] | None = None,
    strict: bool = False,
    price_overrides: str | Path | None = None,
    flush_at_exit: bool = True,
    export_delay_ms: int = 200,
) -> None:
    """Set up cost tracing for this process. Idempotent: a second call changes nothing.

    * ``ledger``: ledger URL (``sqlite:///path/ledger.db``, or ``postgresql://...`` with
      ``paid-hooks[postgres]``); default: ``PAID_HOOKS_LEDGER``,
      else ``~/.local/share/paid-hooks/ledger.db`` (the CLI reads the same). ``False``
      turns the local ledger off (export to OTLP only).
    * ``tracer_provider``: an OpenTelemetry SDK ``TracerProvider`` of the application.
      Spans are then created with it and the ledger's processor is added to it. Without
      it a private provider is used. ``set_tracer_provider`` is never called.
    * ``otlp_endpoint``: also export spans (with costs) to this OTLP/HTTP endpoint
      (needs ``paid-hooks[otlp]``); credentials go in ``otlp_headers``, never in spans.
    * ``strict``: raise :class:`~paid_hooks.CostTracingError` on a second cost-tracing
      signal in one trace instead of recording it as a plain signal.
    * ``price_overrides``: a TOML file of negotiated or private prices.
    * ``flush_at_exit``: flush (bounded, 2 s) at interpreter exit.

    No network I/O happens here. Raises :class:`ValueError` for a malformed ledger URL
    or overrides file.
    """
    global _runtime, _atexit_registered
    with _lock:
        if _runtime is not None:
            log.debug("paid_hooks: initialize_tracing() called again; keeping the first set-up")
            return
        if price_overrides is not None:
            load_price_overrides(price_overrides)
        _warm_up()
        ledger_url: str | None = None
        ledger_exporter: LedgerSpanExporter | None = None
        if ledger is not False:
            store = open_ledger(ledger if isinstance(ledger, str) else None)
            ledger_url = store.url
            ledger_exporter = LedgerSpanExporter(store)
        owns_provider = tracer_provider is None
        if owns_provider:
            tracer_provider = TracerProvider(
                sampler=ALWAYS_ON,
                resource=Resource.create({"service.name": os.environ.get(
                    "OTEL_SERVICE_NAME", "paid-hooks")}),
                span_limits=SpanLimits(max_span_attributes=128),
            )
        elif not isinstance(tracer_provider, TracerProvider):
            raise ValueError("tracer_provider must be an opentelemetry.sdk.trace.TracerProvider")
        processors: list[BatchSpanProcessor] = []
        if ledger_exporter is not None:
            processors.append(OwnSpansBatchProcessor(
                ledger_exporter, schedule_delay_millis=export_delay_ms,
                max_queue_size=1 << 18, max_export_batch_size=2048))
        if otlp_endpoint:
            processors.append(OwnSpansBatchProcessor(_otlp_exporter(otlp_endpoint, otlp_headers)))
        for processor in processors:
            tracer_provider.add_span_processor(processor)
        tracer = tracer_provider.get_tracer(SCOPE_NAME, __version__)
        write_direct = (ledger_exporter.write_records if ledger_exporter is not None
                        else (lambda records: None))
        pipeline = _pipeline.Pipeline(tracer, _hooks, write_direct)
        _runtime = Runtime(
            tracer_provider=tracer_provider,
            owns_provider=owns_provider,
            tracer=tracer,
            pipeline=pipeline,
            processors=processors,
            ledger_exporter=ledger_exporter,
            ledger_url=ledger_url,
            strict=strict,
            settings={"otlp_endpoint": otlp_endpoint},
        )
        if flush_at_exit and not _atexit_registered:
            atexit.register(_flush_at_exit)
            _atexit_registered = True


def _warm_up() -> None:
    """Import the price data and load plugins here, on the initialising thread.

    Importing in the background worker instead would race with the application's own
    imports: some SDKs read half-initialised modules straight from ``sys.modules``
    (openai does so for ``httpx2``, which genai-prices imports).
    """
    pm = _plugins.get_plugin_manager()
    builtin = pm.get_plugin("paid_hooks.pricing")
    if builtin is not None:
        builtin.load()


def _otlp_exporter(endpoint: str, headers: dict[str, str] | None) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ImportError("otlp_endpoint needs: pip install 'paid-hooks[otlp]'") from exc
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=5)
    return exporter


def flush(timeout: float = 5.0) -> bool:
    """Write out everything recorded so far. Waits at most ``timeout`` seconds.

    Returns ``True`` when everything was written in time. Never raises.
    """
    runtime = _runtime
    if runtime is None:
        return True
    try:
        import time

        deadline = time.monotonic() + timeout
        done = runtime.pipeline.flush(timeout)
        for processor in runtime.processors:
            remaining = max(0.0, deadline - time.monotonic())
            done = processor.force_flush(int(remaining * 1000)) and done
        return done
    except Exception:
        log.warning("paid_hooks: flush failed", exc_info=True)
        return False


def shutdown(timeout: float = 5.0) -> None:
    """Flush (bounded by ``timeout``), stop the worker and release the ledger. Never raises.

    Afterwards :func:`initialize_tracing` may be called again (with other settings).
    """
    global _runtime
    with _lock:
        runtime = _runtime
        if runtime is None:
            return
        try:
            flush(timeout)
            runtime.pipeline.shutdown(timeout)
            for processor in runtime.processors:
                processor.shutdown()  # type: ignore[no-untyped-call]
            if runtime.owns_provider:
                runtime.tracer_provider.shutdown()
        except Exception:
            log.warning("paid_hooks: shutdown failed", exc_info=True)
        finally:
            _runtime = None
            OVERRIDES.clear()


def _flush_at_exit() -> None:
    shutdown(timeout=2.0)
