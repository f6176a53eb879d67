"""The model's hand-written fast paths give exactly what their plain definitions give."""

from __future__ import annotations

import json
from dataclasses import fields
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from paid_hooks import Usage

_COUNTS = [f.name for f in fields(Usage) if f.name not in ("units", "estimated")]
_optional_count = st.one_of(st.none(), st.integers(min_value=0, max_value=10**12))

usages = st.builds(
    Usage,
    input_tokens=st.integers(min_value=0, max_value=10**12),
    output_tokens=st.integers(min_value=0, max_value=10**12),
    **{name: _optional_count for name in _COUNTS if name not in ("input_tokens",
                                                                  "output_tokens")},
    units=st.one_of(st.just({}), st.dictionaries(
        st.sampled_from(["web_searches", "images", "audio_seconds"]),
        st.one_of(st.integers(min_value=0, max_value=100),
                  st.decimals(min_value=0, max_value=100, places=2)), max_size=2)),
    estimated=st.booleans(),
)


@given(usages)
def test_reported_fields_counts_every_reported_count(usage: Usage) -> None:
    expected = len(usage.units) + sum(getattr(usage, name) is not None for name in _COUNTS)
    assert usage.reported_fields() == expected


@given(usages)
def test_to_json_is_the_sorted_compact_json_of_to_dict(usage: Usage) -> None:
    expected = json.dumps(usage.to_dict(), sort_keys=True, separators=(",", ":"))
    assert usage.to_json() == expected
    assert Usage.from_dict(json.loads(usage.to_json())) == usage


def test_to_json_of_a_plain_usage() -> None:
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=200)
    assert usage.to_json() == (
        '{"cache_read_tokens":200,"input_tokens":1200,"output_tokens":300}')
    assert Usage(input_tokens=1, units={"images": Decimal("1.5")}).to_json() == (
        '{"input_tokens":1,"output_tokens":0,"units":{"images":"1.5"}}')


def test_the_pipeline_copies_every_field_of_a_signal_record() -> None:
    from dataclasses import asdict

    from paid_hooks import SignalRecord
    from paid_hooks._pipeline import _replace_ids

    record = SignalRecord(event_name="e", external_customer_id="c", external_agent_id="a",
                          trace_id=0, idempotency_key="k", enable_cost_tracing=True,
                          timestamp_ns=5, data_json='{"x":1}', cost_tracing_rejected=True,
                          rejection_reason="r", span_id=0)
    copied = _replace_ids(record, 7, 9)
    assert asdict(copied) == asdict(record) | {"trace_id": 7, "span_id": 9}
    assert all(value not in (None, 0, False) for value in asdict(record).values()
               if value is not record.trace_id and value is not record.span_id)


_RECORDS = ("Usage", "AICall", "Price", "PricedCall", "SignalRecord")


def _reference(cls: type) -> type:
    """The same fields as ``cls`` in a plain frozen slotted dataclass (its own __init__)."""
    import dataclasses

    spec = []
    for f in fields(cls):
        if f.default is not dataclasses.MISSING:
            spec.append((f.name, f.type, dataclasses.field(default=f.default)))
        elif f.default_factory is not dataclasses.MISSING:
            spec.append((f.name, f.type, dataclasses.field(default_factory=f.default_factory)))
        else:
            spec.append((f.name, f.type))
    return dataclasses.make_dataclass(f"Reference{cls.__name__}", spec, frozen=True,
                                      slots=True)


def test_records_init_like_the_generated_dataclass_init() -> None:
    """The records' quick ``__init__`` takes the same arguments and builds the same record
    as the ``__init__`` that ``dataclass`` generates; the records stay frozen."""
    import dataclasses
    import inspect

    import pytest

    import paid_hooks.model as model

    for name in _RECORDS:
        cls = getattr(model, name)
        reference = _reference(cls)
        ours, theirs = inspect.signature(cls), inspect.signature(reference)
        required = [p.name for p in theirs.parameters.values() if p.default is p.empty]
        assert [p.name for p in ours.parameters.values()] == list(theirs.parameters)
        values = {f.name: f"v-{i}" for i, f in enumerate(fields(cls))}
        for args, kwargs in (((), values), (tuple(values.values()), {}),
                             ((), {k: values[k] for k in required})):
            made, expected = cls(*args, **kwargs), reference(*args, **kwargs)
            assert ([getattr(made, f.name) for f in fields(cls)]
                    == [getattr(expected, f.name) for f in fields(cls)]), name
        if required:
            with pytest.raises(TypeError):
                cls(**{k: values[k] for k in required[1:]})  # a required field missing
        with pytest.raises(TypeError):
            cls(**values, unknown=1)
        made = cls(**values)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, fields(cls)[0].name, "changed")
        assert made == cls(**values) and hash(made) == hash(cls(**values))
        assert dataclasses.replace(made, **{fields(cls)[0].name: "x"}) != made
    assert Usage().units == {} and Usage().units is Usage().units  # the shared empty map


def test_records_built_through_their_twin_are_exactly_the_record_class() -> None:
    """Large records are filled through a plain twin class (model._quick_init) and come
    out as the record class itself; a subclass (whose layout may differ) is filled the
    slow way and stays what it is, frozen."""
    import dataclasses

    import pytest

    from paid_hooks.model import TWINS, AICall

    usage = Usage(input_tokens=3, cache_read_tokens=1)
    assert type(usage) is Usage and not isinstance(usage, TWINS[Usage])
    call = AICall("openai", "chat", "m", None, usage, "x", 1, 2)
    assert type(call) is AICall and call.usage is usage and call.status == "ok"

    class SlotUsage(Usage):
        __slots__ = ()

    class DictUsage(Usage):
        pass

    for cls in (SlotUsage, DictUsage):
        made = cls(input_tokens=5, reasoning_tokens=2)
        assert type(made) is cls
        assert (made.input_tokens, made.reasoning_tokens, made.units) == (5, 2, {})
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.input_tokens = 6  # type: ignore[misc]
