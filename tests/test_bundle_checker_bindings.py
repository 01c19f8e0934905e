"""The standalone checker's own canonical hash, CSV cells and sentence matching are the ones Vigil writes with.

verify.py may import nothing from vigil_ir, so it carries its own copies of two small rules; these
properties bind each to Vigil's implementation over arbitrary values.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil_ir import clock
from vigil_ir.eventlog.canonical import event_hash
from vigil_ir.exports import csvsafe, describe
from vigil_ir.exports.bundle import checker as bundle_checker
from vigil_ir.incidents.models import TYPES
from vigil_ir.people import ids
from vigil_ir.people.directory import UNKNOWN
from vigil_ir.exports.eventlog_export import hashed_fields

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["=1+2", "+x", "-y", "@z", "\tx", "\rx", "＝x", "a\u202eb", "\u2066isolated\u2069", "'", ""])
json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12)
                           | st.floats(allow_nan=False, allow_infinity=False) | text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=12)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc))
hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=300, deadline=None)
@given(stream=text, seq=st.integers(1, 10**9), kind=text, actor=text, occurred=times, recorded=times,
       data=json_values, corrects=st.none() | st.integers(1, 10**9), prev_hash=hex64)
def test_the_checker_hashes_an_exported_event_as_the_event_log_does(stream, seq, kind, actor, occurred, recorded, data,
                                                                    corrects, prev_hash):
    row = {"stream": stream, "seq": seq, "kind": kind, "actor": actor, "occurred_at": clock.iso(occurred),
           "recorded_at": clock.iso(recorded), "data": data, "corrects": corrects, "prev_hash": prev_hash}
    stored = {**hashed_fields(row), "occurred_at": occurred, "recorded_at": recorded}  # as the database holds it
    assert bundle_checker.event_hash(row) == event_hash(stored) == event_hash(hashed_fields(row))


@settings(max_examples=500, deadline=None)
@given(value=json_values)
def test_the_checker_renders_a_csv_cell_as_the_bundle_writes_it(value):
    assert bundle_checker.csv_cell(value) == csvsafe.cell(value)


@given(moment=times)
def test_the_checker_reads_and_writes_times_as_vigil_does(moment):
    assert bundle_checker.iso(moment) == clock.iso(moment)
    assert bundle_checker.parse_time(clock.iso(moment)) == moment


def test_the_checker_knows_the_incident_types_user_ids_and_unknown_name_as_vigil_does():
    assert bundle_checker.INCIDENT_TYPE_LABELS == TYPES
    assert bundle_checker.USER_ID_IN_TEXT.pattern == ids._ID_IN_TEXT.pattern
    assert bundle_checker.USER_ID.pattern == ids._USER_ID.pattern  # an exercise's participants
    assert bundle_checker.NAME_UNKNOWN == UNKNOWN


names = st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="()\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                min_size=1, max_size=20).filter(str.strip)
user_ids = st.from_regex(r"U[A-Z0-9]{0,6}[0-9]", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.tuples(text, user_ids, st.none() | names), min_size=1, max_size=4), tail=text)
def test_a_summary_with_people_named_matches_its_sentence_and_gives_the_names_back(parts, tail):
    """Whatever the directory names someone, the summary Vigil writes matches the checker's pattern for
    the sentence, and the names it captures are the ones written."""
    sentence = "".join(f"{before} {user_id} " for before, user_id, _ in parts) + tail
    known = {user_id: name for _, user_id, name in parts if name}
    directory = {user_id: name for user_id, name in known.items()}

    def label(user_id: str) -> str:
        return f"{directory[user_id]} ({user_id})" if user_id in directory else f"{user_id} ({UNKNOWN})"

    written = describe.one_line(ids.replace_ids_in_text(sentence, label))
    found = bundle_checker.names_in_summary(describe.one_line(sentence), written)
    assert found is not None
    for user_id, name in found:
        assert directory.get(user_id) == name
    if written:
        assert bundle_checker.names_in_summary(describe.one_line(sentence), written[:-1]) is None


def test_every_sentence_vigil_writes_is_the_checkers():
    assert describe.describe is bundle_checker.describe and describe.SENTENCES is bundle_checker.SENTENCES


scalars = st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | text


@settings(max_examples=300, deadline=None)
@given(fields=st.fixed_dictionaries({name: scalars | json_values for name in ("stream", "seq", "kind", "actor",
                                     "occurred_at", "recorded_at", "data", "corrects")}), prev_hash=hex64 | scalars)
def test_the_hashed_text_written_field_by_field_is_the_canonical_json_of_the_fields(fields, prev_hash):
    """The checker writes the usual row's hashed text out field by field; any row, of any types, gives
    the text canonical JSON gives (or the same error)."""
    row = {**fields, "prev_hash": prev_hash}
    hashed = {name: row["seq" if name == "stream_seq" else name] for name in bundle_checker.HASHED_FIELDS}
    try:
        expected = row["prev_hash"] + bundle_checker.canonical_json(hashed)
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            bundle_checker.hashed_text(row)
        return
    assert bundle_checker.hashed_text(row) == expected
    if isinstance(row["data"], (dict, list)):
        assert bundle_checker.hashed_text(row, bundle_checker.canonical_json(row["data"])) == expected


@settings(max_examples=500, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_a_row_whose_json_text_is_said_to_hold_no_bidi_control_holds_none(value, ascii_only):
    line = json.dumps({"value": value}, ensure_ascii=ascii_only)
    strings = []

    def walk(v):
        if isinstance(v, str):
            strings.append(v)
        elif isinstance(v, dict):
            for key, item in v.items():
                walk(key)
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)
    walk(json.loads(line))
    if any(bundle_checker.ANY_BIDI_CONTROL.search(s) for s in strings):
        assert bundle_checker.may_hold_bidi_control(line), line


@given(value=text | st.text(alphabet="ab \n\r\x0b\x0c\x1c\u2028\u0085\t", max_size=12))
def test_one_line_joins_the_lines_that_are_not_blank(value):
    assert bundle_checker.one_line(value) == " ¶ ".join(part for part in value.splitlines() if part.strip())
