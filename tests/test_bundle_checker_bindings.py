"""The standalone checker's own canonical hash and CSV cells are the ones Vigil writes with.

verify.py may import nothing from vigil_ir, so it carries its own copies of two small rules; these
properties bind each to Vigil's implementation over arbitrary values.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil_ir import clock
from vigil_ir.eventlog.canonical import event_hash
from vigil_ir.exports import bundle_checker, csvsafe
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
