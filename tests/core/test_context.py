"""Cost rule 4: nesting, isolation, thread hand-off, generators, no leaks."""

from __future__ import annotations

import asyncio
import gc
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from opentelemetry import trace

import paid_hooks
from paid_hooks import current_scope, paid_tracing, signal
from paid_hooks.context import ContextExecutor, TraceScope, wrap
from paid_hooks.testing import FakeReply, FakeUsage

from .conftest import MESSAGES, MODEL, expected_cost


def test_nested_same_customer_joins_the_enclosing_trace(paid_ledger, fake_provider, client):
    @paid_tracing("acme", external_agent_id="sdr")
    def helper() -> None:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)

    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10)), FakeReply(usage=FakeUsage(200, 20)))
    with paid_tracing("acme", external_agent_id="sdr"):
        outer = current_scope()
        helper()
        assert current_scope() is outer
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        signal("meeting_booked", enable_cost_tracing=True)
    assert current_scope() is None
    [row] = paid_ledger.signals()
    assert row["ai_calls"] == 2
    assert Decimal(row["cost_usd"]) == expected_cost(FakeUsage(100, 10)) + expected_cost(
        FakeUsage(200, 20))
    assert len({c["trace_id"] for c in paid_ledger.calls()}) == 1


def test_nested_other_customer_starts_its_own_linked_trace(paid_ledger, fake_provider, client):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10)), FakeReply(usage=FakeUsage(200, 20)))
    with paid_tracing("acme", external_agent_id="sdr"):
        outer = current_scope()
        with paid_tracing("globex", external_agent_id="sdr"):
            inner = current_scope()
            assert inner.trace_id != outer.trace_id
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            signal("email_sent", enable_cost_tracing=True)
        assert current_scope() is outer, "inner exit restores exactly the outer scope"
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        signal("meeting_booked", enable_cost_tracing=True)
    by_event = {r["event_name"]: r for r in paid_ledger.signals()}
    assert by_event["email_sent"]["external_customer_id"] == "globex"
    assert Decimal(by_event["email_sent"]["cost_usd"]) == expected_cost(FakeUsage(100, 10))
    assert Decimal(by_event["meeting_booked"]["cost_usd"]) == expected_cost(FakeUsage(200, 20))
    # The default set-up (only the ledger sees spans) builds no trace span: a fresh root
    # context per trace is enough; with an application's provider the roots are real
    # linked spans (test_setup.py and the test below).
    for scope in (inner, outer):
        assert not scope.root_span.is_recording()
        assert scope.root_span.get_span_context().trace_id == scope.trace_id


def _ledger_only_scope() -> TraceScope:
    with paid_tracing("acme", external_agent_id="sdr"):
        scope = current_scope()
    assert scope is not None and not scope.root_span.is_recording()
    return scope


def test_ledger_only_trace_ids_start_with_the_unix_second(paid_ledger, monkeypatch):
    """Default set-up: X-Ray layout, 32 bits of Unix seconds then 96 random bits, so trace
    ids made in a later second sort after every earlier one (the ledger's indexes grow at
    their right edge)."""
    from paid_hooks import tracing

    clock = [1_767_225_600.9]  # 2026-01-01, and later seconds below
    monkeypatch.setattr(tracing, "_time", lambda: clock[0])
    ids = []
    for second in range(5):
        clock[0] = 1_767_225_600.9 + second
        ids.append([_ledger_only_scope().trace_id for _ in range(20)])
    for second, made in enumerate(ids):
        assert {trace_id >> 96 for trace_id in made} == {1_767_225_600 + second}
        assert all(0 < trace_id < 1 << 128 for trace_id in made)
    for earlier, later in itertools.pairwise(ids):
        assert max(earlier) < min(later)


def test_ledger_only_trace_ids_keep_96_random_bits_and_are_never_zero(paid_ledger,
                                                                      monkeypatch):
    from paid_hooks import tracing

    monkeypatch.setattr(tracing, "_time", lambda: 1_767_225_600.0)
    scopes = [_ledger_only_scope() for _ in range(200)]
    low = [scope.trace_id & ((1 << 96) - 1) for scope in scopes]
    assert len(set(low)) == len(low)
    # every one of the 96 low bits varies (a stuck bit would show in 200 draws)
    assert all(len({value >> bit & 1 for value in low}) == 2 for bit in range(96))
    span_ids = {scope.root_span.get_span_context().span_id for scope in scopes}
    assert len(span_ids) == len(scopes) and 0 not in span_ids

    # A draw of zeros is drawn again: neither id is ever 0 (even at the epoch).
    draws = iter([0, 0, (5 << 64) | 7])
    monkeypatch.setattr(tracing, "_getrandbits", lambda bits: next(draws))
    monkeypatch.setattr(tracing, "_time", lambda: 0.0)
    scope = _ledger_only_scope()
    assert (scope.trace_id, scope.root_span.get_span_context().span_id) == (5, 7)


def test_nested_other_customer_links_its_root_span_to_the_outer_one(tmp_path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from paid_hooks.testing import temporary_ledger

    exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    with temporary_ledger(tmp_path, tracer_provider=app_provider), \
            paid_tracing("acme", external_agent_id="sdr"):
        outer = current_scope()
        with paid_tracing("globex", external_agent_id="sdr"):
            inner = current_scope()
    roots = [s for s in exporter.get_finished_spans() if s.name == "paid.trace"]
    assert len(roots) == 2
    [inner_root] = [s for s in roots if s.context.trace_id == inner.trace_id]
    assert inner_root.parent is None
    assert inner_root.links[0].context.span_id == outer.root_span.get_span_context().span_id
    assert inner_root.attributes["paid.external_customer_id"] == "globex"


def test_nested_exit_restores_outer_state_after_an_exception():
    with paid_tracing("acme", external_agent_id="sdr"):
        outer = current_scope()
        with pytest.raises(KeyError), paid_tracing("globex", external_agent_id="sdr"):
            raise KeyError("boom")
        assert current_scope() is outer
        # The default set-up builds no spans and leaves OpenTelemetry's context alone.
        assert not trace.get_current_span().get_span_context().is_valid
    assert current_scope() is None
    assert not trace.get_current_span().get_span_context().is_valid


def test_default_set_up_leaves_the_applications_spans_their_parent():
    """Only the ledger sees paid-hooks' spans by default: the application's own spans inside
    a paid_tracing stay in the application's trace, under the application's span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = app_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as request, \
            paid_tracing("acme", external_agent_id="sdr"):
        scope = current_scope()
        assert trace.get_current_span() is request
        with tracer.start_as_current_span("db"):
            pass
    db = next(s for s in exporter.get_finished_spans() if s.name == "db")
    assert db.parent.span_id == request.get_span_context().span_id
    assert db.context.trace_id == request.get_span_context().trace_id != scope.trace_id


def test_no_leak_after_exit_in_sequential_requests(paid_ledger, fake_provider, client):
    for customer in ("req1", "req2"):
        with paid_tracing(customer, external_agent_id="sdr"):
            with paid_tracing("nested", external_agent_id="sdr"):
                pass
            assert current_scope().external_customer_id == customer
        assert current_scope() is None
    fake_provider.queue(FakeReply(usage=FakeUsage(10, 1)))
    client.chat.completions.create(model=MODEL, messages=MESSAGES)  # outside any trace
    [call] = paid_ledger.calls()
    assert call["external_customer_id"] is None


def test_same_instance_reused_concurrently_never_raises():
    scope = paid_tracing("acme", external_agent_id="sdr")

    async def use() -> str:
        async with scope:
            await asyncio.sleep(0.001)
            return current_scope().external_customer_id

    async def main() -> list[str]:
        with paid_tracing("base", external_agent_id="sdr"):
            pass  # an earlier top-level scope in the base context (the Paid SDK bug)
        return await asyncio.gather(*(use() for _ in range(20)))

    assert asyncio.run(main()) == ["acme"] * 20


def test_thread_pool_keeps_the_trace_with_wrap_and_context_executor():
    seen: dict[str, object] = {}
    with paid_tracing("acme", external_agent_id="sdr"):
        expected = current_scope()
        with ThreadPoolExecutor(1) as plain:
            seen["plain"] = plain.submit(current_scope).result()
            seen["wrapped"] = plain.submit(wrap(current_scope)).result()
        with ContextExecutor(2) as executor:
            seen["executor"] = executor.submit(current_scope).result()
            seen["map"] = list(executor.map(lambda _: current_scope(), range(3)))
        thread_result: list[object] = []
        t = threading.Thread(target=wrap(lambda: thread_result.append(current_scope())))
        t.start()
        t.join()
    assert seen["plain"] is None, "a plain pool does not carry context (documented)"
    assert seen["wrapped"] is expected
    assert seen["executor"] is expected
    assert seen["map"] == [expected] * 3
    assert thread_result == [expected]


def test_thread_handoff_attributes_the_worker_call(paid_ledger, fake_provider, client):
    usage = FakeUsage(300, 30)
    fake_provider.queue(FakeReply(usage=usage))
    with paid_tracing("acme", external_agent_id="sdr"), ContextExecutor(1) as pool:
        pool.submit(client.chat.completions.create, model=MODEL, messages=MESSAGES).result()
        signal("doc_processed", enable_cost_tracing=True)
    [row] = paid_ledger.signals()
    assert row["ai_calls"] == 1 and Decimal(row["cost_usd"]) == expected_cost(usage)


def test_sync_generator_keeps_attribution_for_the_whole_iteration(paid_ledger, fake_provider,
                                                                  client):
    fake_provider.queue(*(FakeReply(usage=FakeUsage(100 * i, i)) for i in (1, 2, 3)))

    @paid_tracing("acme", external_agent_id="streamer")
    def stream_answers():
        for _ in range(3):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
            yield current_scope().external_customer_id
        signal("answers_streamed", enable_cost_tracing=True)

    seen_outside = []
    for customer in stream_answers():
        seen_outside.append(current_scope())
        assert customer == "acme"
    assert seen_outside == [None, None, None], "the consumer's context is never polluted"
    [row] = paid_ledger.signals()
    assert row["ai_calls"] == 3 and row["input_tokens"] == 600


async def test_async_generator_keeps_attribution_and_survives_early_close(paid_ledger,
                                                                          fake_provider, aclient):
    fake_provider.queue(*(FakeReply(usage=FakeUsage(100, 10)) for _ in range(3)))

    @paid_tracing("acme", external_agent_id="streamer")
    async def tokens():
        signal("stream_started", enable_cost_tracing=True)
        for _ in range(3):
            await aclient.chat.completions.create(model=MODEL, messages=MESSAGES)
            yield current_scope().external_customer_id

    agen = tokens()
    assert await agen.__anext__() == "acme"
    assert current_scope() is None
    assert await agen.__anext__() == "acme"
    await agen.aclose()  # the client went away
    assert current_scope() is None
    [row] = paid_ledger.signals()
    assert row["ai_calls"] == 2


def test_async_generator_finalised_in_another_context_never_raises(paid_ledger):
    @paid_tracing("acme", external_agent_id="streamer")
    async def tokens():
        yield 1
        yield 2

    async def start() -> object:
        agen = tokens()
        await agen.__anext__()
        return agen

    agen = asyncio.run(start())  # left suspended; finalised later by the GC elsewhere
    del agen
    gc.collect()
    assert current_scope() is None


def test_decorated_coroutine_and_function_return_values(paid_ledger):
    @paid_tracing("acme", external_agent_id="sdr")
    async def coro(x: int) -> int:
        return x * 2

    @paid_tracing("acme", external_agent_id="sdr")
    def func(x: int) -> int:
        return x + 1

    assert asyncio.run(coro(4)) == 8
    assert func(4) == 5
    assert coro.__name__ == "coro" and func.__name__ == "func"


def test_paid_tracing_validates_ids():
    with pytest.raises(ValueError, match="external_customer_id"):
        paid_tracing("", external_agent_id="sdr")
    with pytest.raises(ValueError, match="external_agent_id"):
        paid_tracing("acme", external_agent_id="")


def test_metadata_is_recorded_on_the_root_span(tmp_path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from paid_hooks.testing import temporary_ledger

    exporter = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    with temporary_ledger(tmp_path, tracer_provider=app_provider), \
            paid_tracing("acme", external_agent_id="sdr", metadata={"plan": "pro", "seats": 3}):
        assert current_scope().metadata == {"plan": "pro", "seats": 3}
    [root] = [s for s in exporter.get_finished_spans() if s.name == "paid.trace"]
    assert root.attributes["paid.metadata.plan"] == "pro"
    assert root.attributes["paid.metadata.seats"] == 3


def test_paid_client_delegates(paid_ledger, fake_provider, client):
    usage = FakeUsage(400, 40)
    fake_provider.queue(FakeReply(usage=usage))
    paid = paid_hooks.Paid()
    paid.initialize_tracing()  # already initialised by the fixture: a no-op

    def handler(text: str) -> str:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
        paid.signal("email_answered", enable_cost_tracing=True)
        return current_scope().external_customer_id

    assert paid.trace("acme", handler, external_agent_id="sdr", args=("hi",)) == "acme"
    [row] = paid_ledger.signals()
    assert Decimal(row["cost_usd"]) == expected_cost(usage)
