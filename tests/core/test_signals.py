"""signal() validation: clear errors, data never mutated."""

from __future__ import annotations

import datetime

import pytest

from paid_hooks import paid_tracing, signal


def test_missing_agent_id_names_the_field(paid_ledger):
    with pytest.raises(ValueError, match="external_agent_id"):
        signal("meeting_booked", external_customer_id="acme")


def test_missing_customer_id_names_the_field(paid_ledger):
    with pytest.raises(ValueError, match="external_customer_id"):
        signal("meeting_booked", external_agent_id="sdr")


def test_empty_event_name_is_rejected(paid_ledger):
    with paid_tracing("acme", external_agent_id="sdr"), pytest.raises(ValueError,
                                                                      match="event_name"):
        signal("")


def test_unserialisable_data_names_the_key(paid_ledger):
    with paid_tracing("acme", external_agent_id="sdr"):
        with pytest.raises(TypeError, match=r"'meeting\.when'"):
            signal("meeting_booked", data={"meeting": {"when": datetime.datetime.now()}})
        with pytest.raises(TypeError, match=r"'slots\[1\]'"):
            signal("meeting_booked", data={"slots": [1, object()]})


def test_data_is_copied_never_mutated(paid_ledger):
    data = {"deal": {"value": 1200}, "tags": ["warm"]}
    snapshot = {"deal": {"value": 1200}, "tags": ["warm"]}
    with paid_tracing("acme", external_agent_id="sdr"):
        signal("meeting_booked", data=data, enable_cost_tracing=True)
    data["deal"]["value"] = 0
    assert snapshot == {"deal": {"value": 1200}, "tags": ["warm"]}
    [row] = paid_ledger.signals()
    assert row["data"] == {"deal": {"value": 1200}, "tags": ["warm"]}


def test_explicit_ids_override_the_trace_and_idempotency_key_dedupes(paid_ledger):
    with paid_tracing("acme", external_agent_id="sdr"):
        signal("invoice_sent", external_agent_id="billing", idempotency_key="inv-1")
        signal("invoice_sent", external_agent_id="billing", idempotency_key="inv-1")
    [row] = paid_ledger.signals()
    assert row["external_agent_id"] == "billing" and row["external_customer_id"] == "acme"
    assert row["idempotency_key"] == "inv-1"


def test_signal_outside_a_trace_with_explicit_ids(paid_ledger):
    record = signal("lead_created", external_customer_id="acme", external_agent_id="sdr")
    [row] = paid_ledger.signals()
    assert row["event_name"] == "lead_created" and row["trace_id"] != "0" * 32
    assert record.idempotency_key == row["idempotency_key"]
