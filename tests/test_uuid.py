from __future__ import annotations

import uuid as std_uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.protocol import NULL_UUID, is_uuid_str, uuid_from_str, uuid_to_str


def test_uuid_byte_order_vectors(vectors):
    for vector in vectors["uuid_byte_order"]:
        raw = bytes.fromhex(vector["hex"])
        assert uuid_to_str(raw) == vector["expected"]
        assert uuid_from_str(vector["expected"]) == raw


def test_worked_example_from_a_real_value_table():
    raw = bytes.fromhex("649a860f00029b0affffd4c75dbaf53c")
    assert uuid_to_str(raw) == "0f869a64-0200-0a9b-ffffd4c75dbaf53c"


def test_null_uuid():
    assert uuid_to_str(NULL_UUID) == "00000000-0000-0000-0000000000000000"


def test_upper_case_input_is_accepted_and_output_is_lower_case():
    raw = uuid_from_str("0F869A64-0200-0A9B-FFFFD4C75DBAF53C")
    assert uuid_to_str(raw) == "0f869a64-0200-0a9b-ffffd4c75dbaf53c"


@pytest.mark.parametrize(
    "text",
    [
        "0f86a2fe-0378-3e15-ffff373f9870b52a/AI1",  # subcontrol key, never on the wire
        "0f869a64-0200-0a9b-ffff-d4c75dbaf53c",  # the standard 8-4-4-4-12 form
        "",
        "not-a-uuid",
        "0f869a64-0200-0a9b-ffffd4c75dbaf53",
    ],
)
def test_non_loxone_strings_are_rejected(text):
    assert not is_uuid_str(text)
    with pytest.raises(ValueError, match="not a Loxone UUID"):
        uuid_from_str(text)


def test_wrong_sized_raw_uuid_is_rejected():
    with pytest.raises(ValueError, match="16 bytes"):
        uuid_to_str(b"\x00" * 15)


@given(st.binary(min_size=16, max_size=16))
def test_round_trip_and_agreement_with_microsoft_guid_layout(raw):
    text = uuid_to_str(raw)
    assert uuid_from_str(text) == raw
    assert is_uuid_str(text)
    # The same bytes read as a little-endian GUID by the standard library, minus the 4th dash.
    standard = str(std_uuid.UUID(bytes_le=raw))
    assert text == standard[:23] + standard[24:]
