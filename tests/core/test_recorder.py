"""The recorder's shortcuts: the record ``finish`` builds, the handle as its own exclusive
block, and how few Python calls the caller's thread makes per recorded call."""

from __future__ import annotations

import contextvars
import dataclasses
import sys
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import DEFAULT_TRACE_STATE, SpanContext, TraceFlags

import paid_hooks
from paid_hooks import AICall, CallStatus, Usage, hookimpl, start_call
from paid_hooks._plugins import get_plugin_manager
from paid_hooks.recorder import _otel_current


class Captured:
    """A plugin that keeps every priced call the worker hands to observers."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    @hookimpl
    def call_recorded(self, record: Any) -> None:
        self.records.append(record)


@pytest.fixture
def captured(paid_ledger):
    plugin = Captured()
    pm = get_plugin_manager()
    pm.register(plugin, name="recorder-test-capture")
    try:
        yield plugin
    finally:
        pm.unregister(name="recorder-test-capture")


def _start(**extra: Any) -> paid_hooks.CallHandle:
    return start_call(provider="openai", operation="chat", request_model="gpt-4o-mini",
                      captured_by="rec_test", **extra)


def test_finish_builds_the_same_frozen_record_as_the_constructor(captured, paid_ledger):
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=100)
    with paid_hooks.paid_tracing("acme", external_agent_id="rec"):
        handle = _start(streaming=True, server_address="api.example", batch=True)
        with handle.exclusive():
            pass
        handle.finish(usage, response_model="gpt-4o-mini-2024-07-18", response_id="resp-1",
                      service_tier="default")
        unknown = _start()
        unknown.finish(None)
    paid_hooks.flush()
    first, second = (r.call for r in captured.records)
    assert type(first) is AICall and type(second) is AICall
    expected = AICall("openai", "chat", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", usage,
                      "rec_test", first.start_time_ns, first.end_time_ns, CallStatus.OK,
                      None, None, "resp-1", True, "default", True, "api.example")
    assert first == expected
    assert ([getattr(first, f.name) for f in dataclasses.fields(AICall)]  # every field set
            == [getattr(expected, f.name) for f in dataclasses.fields(AICall)])
    assert 0 < first.start_time_ns <= first.end_time_ns
    assert (second.usage, second.usage_unknown_reason, second.status) == (
        None, "not_reported", CallStatus.OK)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.response_id = "changed"  # type: ignore[misc]
    [priced, _] = paid_ledger.calls()
    assert priced["cost_status"] == "priced" and Decimal(str(priced["cost_usd"])) > 0


def test_handle_is_its_own_exclusive_block_and_a_second_block_still_works(paid_ledger):
    with paid_hooks.paid_tracing("acme", external_agent_id="rec"):
        handle = _start()
        outer = handle.exclusive()
        assert outer is handle  # no block object per call
        with outer:
            assert paid_hooks.call_in_flight() == "rec_test"
            inner = handle.exclusive()  # the same handle's block, taken: a block of its own
            assert inner is not handle
            with inner:
                assert paid_hooks.call_in_flight() == "rec_test"
                assert not _start().recording
            assert paid_hooks.call_in_flight() == "rec_test"
        assert paid_hooks.call_in_flight() is None
        for _ in range(2):  # entered again and again, one read at a time (a stream)
            with handle.exclusive():
                assert not _start().recording
            assert paid_hooks.call_in_flight() is None
        handle.finish(Usage(input_tokens=1, output_tokens=1))
    assert len(paid_ledger.calls()) == 1


def test_exclusive_block_left_in_another_context_does_not_raise(paid_ledger):
    handle = _start()
    block = handle.exclusive()
    block.__enter__()
    contextvars.copy_context().run(block.__exit__, None, None, None)  # another context
    assert paid_hooks.call_in_flight() == "rec_test"  # this context's own value stays
    with handle.exclusive():
        pass  # the handle's block is free again
    block.__exit__(None, None, None)  # left twice: a no-op
    paid_hooks.recorder._IN_FLIGHT.set(None)
    handle.finish(None)


def test_inactive_handle_blocks_change_nothing(paid_ledger):
    with paid_hooks.paid_tracing("acme", external_agent_id="rec"):
        handle = _start()
        with handle.exclusive():
            lower = _start()
            assert not lower.recording and lower.done and lower.scope is None
            with lower.exclusive():
                assert paid_hooks.call_in_flight() == "rec_test"
            lower.finish(Usage(input_tokens=5, output_tokens=5))
        handle.usage_unknown("stream_closed_early")
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_start_call_reads_the_opentelemetry_context_and_suppression(paid_ledger):
    assert _otel_current() is otel_context.get_current()
    span = trace.NonRecordingSpan(SpanContext(7, 9, False, TraceFlags(1)))
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        assert _otel_current() is otel_context.get_current()
        assert _start().parent is otel_context.get_current()
    finally:
        otel_context.detach(token)
    token = otel_context.attach(otel_context.set_value(
        otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        suppressed = _start()
        assert not suppressed.recording and suppressed.parent is None
    finally:
        otel_context.detach(token)


def test_a_trace_root_context_is_the_one_opentelemetry_builds(paid_ledger):
    with paid_hooks.paid_tracing("acme", external_agent_id="rec") as tracing:
        scope = paid_hooks.current_scope()
        assert scope is not None and tracing.metadata == {}
        ctx = scope.root_span.get_span_context()
        rebuilt = SpanContext(trace_id=ctx.trace_id, span_id=ctx.span_id, is_remote=False,
                              trace_flags=TraceFlags(TraceFlags.SAMPLED))
        assert type(ctx) is SpanContext and ctx == rebuilt
        assert ctx.is_valid and ctx.trace_state is DEFAULT_TRACE_STATE
        assert ctx.trace_id == scope.trace_id and 0 < ctx.span_id < 1 << 64
        assert 0 < scope.trace_id < 1 << 128


def _python_calls(fn: Any) -> list[str]:
    """The paid-hooks Python functions that ``fn()`` runs on this thread (the pipeline's
    own ``submit_call`` and what it runs left out)."""
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        name = frame.f_code.co_filename
        if event == "call" and "paid_hooks" in name and "_pipeline" not in name:
            seen.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


def test_a_recorded_call_runs_few_python_functions_on_the_caller_thread(paid_ledger):
    """A cheap regression guard for the hot path: count the calls, not the time."""
    usage = Usage(input_tokens=10, output_tokens=2)

    def one_call() -> None:
        handle = _start()
        with handle.exclusive():
            pass
        handle.finish(usage, response_model="gpt-4o-mini", response_id="r")

    with paid_hooks.paid_tracing("acme", external_agent_id="rec"):
        one_call()  # the worker started
        calls = _python_calls(one_call)
    assert calls == ["start_call", "exclusive", "__enter__", "__exit__", "finish"]
    trace_calls = _python_calls(lambda: paid_hooks.paid_tracing(
        "acme", external_agent_id="rec").__enter__().__exit__(None, None, None))
    assert trace_calls == ["__init__", "__enter__", "_open", "_enter", "activate",
                           "__exit__", "_leave", "deactivate"]


# -- finish_later: the response read on the pipeline worker ---------------------------------


def _read_on_worker(threads: list[str]) -> Any:
    import threading

    def read(source: Any) -> paid_hooks.CallReading:
        threads.append(threading.current_thread().name)
        return source

    return read


def test_finish_later_records_what_the_reader_returns_on_the_worker(captured, paid_ledger):
    threads: list[str] = []
    read = _read_on_worker(threads)
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=100)
    with paid_hooks.paid_tracing("acme", external_agent_id="rec"):
        handle = _start(streaming=True)
        handle.finish_later(read, paid_hooks.CallReading(
            usage, "gpt-4o-mini-2024-07-18", "resp-later", "default"))
        assert handle.done
        handle.finish(Usage(input_tokens=1, output_tokens=1))  # ignored: recorded once
        unknown = _start()
        unknown.finish_later(read, paid_hooks.CallReading(None, "gpt-4o-mini", "resp-2",
                                                          "default", "stream_closed_early"))
        default_reason = _start()
        default_reason.finish_later(read, paid_hooks.CallReading(None))
    paid_hooks.flush()
    assert threads == ["paid-hooks-pipeline"] * 3
    first, second, third = (r.call for r in captured.records)
    assert first == AICall(
        provider="openai", operation="chat", request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18", usage=usage, captured_by="rec_test",
        start_time_ns=first.start_time_ns, end_time_ns=first.end_time_ns,
        status=CallStatus.OK, response_id="resp-later", streaming=True,
        service_tier="default")
    assert first.start_time_ns <= first.end_time_ns
    assert (second.usage, second.usage_unknown_reason, second.response_model,
            second.response_id, second.service_tier) == (
        None, "stream_closed_early", "gpt-4o-mini", "resp-2", "default")
    assert (third.usage, third.usage_unknown_reason) == (None, "not_reported")
    rows = {row["response_id"]: row for row in paid_ledger.calls()}
    assert rows["resp-later"]["cost_status"] == "priced"
    # gpt-4o-mini: 900 input at $0.15/M + 100 cached at $0.075/M + 200 output at $0.60/M
    assert rows["resp-later"]["cost_usd"] == "0.0002625"
    assert rows["resp-2"]["cost_status"] == "usage_unknown"
    assert len(paid_ledger.calls()) == 3


@pytest.mark.parametrize("reader", ["raises", "wrong_type", "wrong_usage"])
def test_finish_later_with_a_failing_reader_is_usage_unknown(paid_ledger, reader, caplog):
    def read(source: Any) -> Any:
        if reader == "raises":
            raise ValueError("no such field")
        if reader == "wrong_type":
            return (Usage(input_tokens=1, output_tokens=1),)
        return paid_hooks.CallReading({"input_tokens": 1})  # type: ignore[arg-type]

    with paid_hooks.paid_tracing("acme", external_agent_id="rec"):
        _start().finish_later(read, None)
    paid_hooks.flush()
    [row] = paid_ledger.calls()
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "unreadable_response")
    assert "could not read an AI call's response" in caplog.text


def test_finish_later_on_an_inactive_handle_records_nothing(paid_ledger):
    calls: list[Any] = []
    with paid_hooks.paid_tracing("acme", external_agent_id="rec"):
        outer = _start()
        with outer.exclusive():
            inner = _start()
            assert not inner.recording
            inner.finish_later(calls.append, None)
        outer.finish_later(lambda source: paid_hooks.CallReading(None), None)
    paid_hooks.flush()
    assert calls == []
    [row] = paid_ledger.calls()
    assert row["cost_reason"] == "not_reported"
