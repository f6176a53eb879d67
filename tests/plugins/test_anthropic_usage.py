"""Anthropic usage normalisation (additive -> inclusive) and stream merging, in isolation.

The end-to-end tests drive the SDK; these pin the edge cases the fake server never sends.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paid_hooks import Usage
from paid_hooks_anthropic._usage import StreamUsage, merged_usage_and_tier, message_usage


def test_input_includes_cache_reads_and_writes_and_output_includes_thinking():
    usage = message_usage({
        "input_tokens": 13, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 50,
        "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
        "output_tokens": 300, "output_tokens_details": {"thinking_tokens": 120},
        "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 5},
    })
    assert usage == Usage(input_tokens=163, output_tokens=300, cache_read_tokens=50,
                          cache_write_tokens=100, cache_write_5m_tokens=60,
                          cache_write_1h_tokens=40, reasoning_tokens=120,
                          units={"web_searches": 2})


def test_not_reported_stays_none_and_zero_stays_zero():
    assert message_usage(None) is None
    assert message_usage({"service_tier": "standard"}) is None
    usage = message_usage({"input_tokens": 10, "output_tokens": 0,
                           "cache_read_input_tokens": 0})
    assert usage == Usage(input_tokens=10, output_tokens=0, cache_read_tokens=0)
    assert usage.cache_write_tokens is None and usage.reasoning_tokens is None
    assert dict(usage.units) == {}


def test_cache_split_without_total_gives_the_total():
    usage = message_usage({"input_tokens": 5, "output_tokens": 1,
                           "cache_creation": {"ephemeral_5m_input_tokens": 7,
                                              "ephemeral_1h_input_tokens": 3}})
    assert (usage.input_tokens, usage.cache_write_tokens) == (15, 10)


def test_zero_web_searches_add_no_unit():
    usage = message_usage({"input_tokens": 5, "output_tokens": 1,
                           "server_tool_use": {"web_search_requests": 0}})
    assert dict(usage.units) == {}


def test_compaction_iterations_are_added_other_iterations_are_not():
    usage = message_usage({
        "input_tokens": 20, "output_tokens": 10, "cache_read_input_tokens": 0,
        "iterations": [
            {"type": "compaction", "input_tokens": 1000, "output_tokens": 50,
             "cache_read_input_tokens": 200, "cache_creation_input_tokens": 0},
            {"type": "message", "input_tokens": 20, "output_tokens": 10,
             "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        ]})
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1220, 60, 200)


def test_stream_merge_later_values_win_and_nothing_is_summed():
    merged = StreamUsage()
    merged.merge({"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1,
                  "service_tier": "standard"}, final=False)
    assert not merged.final_seen
    merged.merge({"output_tokens": 250, "cache_read_input_tokens": 90,
                  "output_tokens_details": {"thinking_tokens": 30}}, final=True)
    assert merged.final_seen
    assert merged_usage_and_tier(merged._reported or []) == (
        Usage(input_tokens=100, output_tokens=250, cache_read_tokens=90, reasoning_tokens=30),
        "standard")
    assert merged_usage_and_tier([]) == (None, None)


counts = st.integers(min_value=0, max_value=10**6)


@given(plain=counts, read=counts, write=counts, output=counts, repeat=st.booleans())
def test_stream_merge_equals_the_whole_message(plain, read, write, output, repeat):
    whole = {"input_tokens": plain, "cache_read_input_tokens": read,
             "cache_creation_input_tokens": write, "output_tokens": output}
    merged = StreamUsage()
    merged.merge({**whole, "output_tokens": 1}, final=False)
    delta = {"output_tokens": output}
    if repeat:  # the delta may repeat the cumulative input counts
        delta.update(input_tokens=plain, cache_read_input_tokens=read,
                     cache_creation_input_tokens=write)
    merged.merge(delta, final=True)
    usage, _ = merged_usage_and_tier(merged._reported or [])
    assert usage == message_usage(whole)
    assert usage is not None and usage.input_tokens == plain + read + write
