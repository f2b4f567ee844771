"""Canonical JSON: the bytes that are hashed are exactly the standard library's sorted, compact,
UTF-8 JSON of the fact, whatever the text holds; and an entry's reserved fields are the log's."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhkh.ledger.entries import Fact, canonical, entry_data, floats_in

scalars = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text()
documents = st.recursive(scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30)


def reference(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@given(st.dictionaries(st.text(), documents))
def test_canonical_json_is_the_standard_librarys_sorted_compact_utf8(value: dict[str, Any]) -> None:
    assert canonical(value) == reference(value)


def test_awkward_text_is_encoded_as_the_reference_does() -> None:
    for text in ["", "\x00\x1f\x7f", '"\\/', "кириллица ЖКХ", "\u2028\u2029", "😀", "\t\n\r\b\f"]:
        value = {"b": text, "a": [text, {"z": None, "y": True}]}
        assert canonical(value) == reference(value)


def test_an_entry_names_its_type_version_commitment_and_the_entries_it_corrects() -> None:
    fact = Fact("recalculation", {"period": "2026-04", "total": -300}, 7, "1001", date(2026, 4, 1), (date(2026, 3, 1),))
    data = entry_data(fact, bytes(range(32)), {date(2026, 3, 1): 41})
    assert json.loads(data) == {
        "type": "recalculation",
        "v": 1,
        "account": bytes(range(32)).hex(),
        "period": "2026-04",
        "total": -300,
        "corrects_entries": {"2026-03": 41},
    }
    assert b"1001" not in data, "the account number stays out"


@pytest.mark.parametrize("key", ["type", "v", "account", "corrects_entries"])
def test_a_fact_may_not_set_what_the_log_sets(key: str) -> None:
    with pytest.raises(ValueError, match="the log sets them"):
        Fact("payment", {key: 1})


def test_an_account_is_named_by_id_and_number_together() -> None:
    with pytest.raises(ValueError, match="both its id and its number"):
        Fact("payment", {}, account_id=1)


def test_floats_are_found_wherever_they_hide() -> None:
    assert floats_in({"a": [1, {"b": 2.5}], "c": 3}) == ["$.a[1].b"]
    assert floats_in({"a": [1, "2.5"]}) == []
