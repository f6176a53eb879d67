"""initialize_tracing: coexistence with the application's OpenTelemetry, failure isolation."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage, temporary_ledger

from .conftest import MESSAGES, MODEL, expected_cost


def test_init_never_sets_the_global_provider_and_is_idempotent(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(trace, "set_tracer_provider", lambda p: calls.append(p))
    with temporary_ledger(tmp_path):
        paid_hooks.initialize_tracing(ledger=f"sqlite:///{tmp_path}/other.db")
        assert not (tmp_path / "other.db").exists(), "second initialise changes nothing"
    assert calls == []


def test_application_provider_gets_our_spans_with_costs(tmp_path, fake_provider, client):
    exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    app_tracer = app_provider.get_tracer("app")
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage))
    with temporary_ledger(tmp_path, tracer_provider=app_provider) as ledger:
        with app_tracer.start_as_current_span("POST /replies") as request_span, \
                paid_tracing("acme", external_agent_id="sdr"):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            signal("email_sent", enable_cost_tracing=True)
        [row] = ledger.signals()
    assert Decimal(row["cost_usd"]) == expected_cost(usage)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    chat = spans[f"chat {MODEL}"]
    assert chat.kind is trace.SpanKind.CLIENT
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 1000
    assert chat.attributes["paid.cost.usd"] == str(expected_cost(usage))
    assert chat.attributes["gen_ai.usage.cost.currency"] == "USD"
    assert chat.attributes["paid.external_customer_id"] == "acme"
    root = spans["paid.trace"]
    assert root.parent is None, "each outcome is a trace of its own"
    assert root.links[0].context.span_id == request_span.get_span_context().span_id
    assert chat.parent.span_id == root.context.span_id


def test_sampling_never_drops_ledger_rows(tmp_path, fake_provider, client):
    usage = FakeUsage(1000, 100)
    fake_provider.queue(FakeReply(usage=usage))
    with temporary_ledger(tmp_path, tracer_provider=TracerProvider(sampler=ALWAYS_OFF)) as ledger:
        with paid_tracing("acme", external_agent_id="sdr"):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            signal("email_sent", enable_cost_tracing=True)
        [row] = ledger.signals()
    assert row["ai_calls"] == 1 and Decimal(row["cost_usd"]) == expected_cost(usage)


def test_a_broken_ledger_is_logged_never_raised(tmp_path, fake_provider, client, caplog):
    fake_provider.queue(FakeReply(usage=FakeUsage(10, 1)))
    with temporary_ledger(tmp_path) as ledger:
        def fail(calls, signals):
            raise OSError("disk full")

        ledger.ledger.write = fail
        with caplog.at_level(logging.ERROR), paid_tracing("acme", external_agent_id="sdr"):
            reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
            signal("done", enable_cost_tracing=True)
        assert reply.choices
        assert paid_hooks.flush(timeout=5)
    assert any("could not write" in r.getMessage() for r in caplog.records)


def test_flush_and_shutdown_without_initialise_are_noops():
    paid_hooks.shutdown()
    assert paid_hooks.flush(timeout=0.1) is True
    paid_hooks.shutdown()


def test_ledger_file_is_private(tmp_path):
    with temporary_ledger(tmp_path):
        pass
    assert (tmp_path / "ledger.db").stat().st_mode & 0o077 == 0


def test_bad_ledger_url_is_a_clear_error(tmp_path):
    paid_hooks.shutdown()
    with pytest.raises(ValueError, match="unsupported ledger URL"):
        paid_hooks.initialize_tracing(ledger="mysql://nope")
    paid_hooks.shutdown()


def test_pricing_never_runs_on_the_callers_thread(paid_ledger, fake_provider, client):
    import threading

    from paid_hooks._plugins import get_plugin_manager

    threads = []

    class Spy:
        @paid_hooks.hookimpl
        def price_call(self, call):
            threads.append(threading.current_thread().name)

    pm = get_plugin_manager()
    pm.register(Spy(), name="spy")
    try:
        fake_provider.queue(FakeReply(usage=FakeUsage(10, 1)))
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        paid_ledger.flush()
    finally:
        pm.unregister(name="spy")
    assert threads == ["paid-hooks-pipeline"]
