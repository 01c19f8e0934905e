"""parse_json gives exactly what json.loads gives (the value and its types, or the error), faster.

The record checks (`vigil verify`, the bundle's state check) parse every event and state row they
compare with it; a value parsed differently would change what they find.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil_ir.jsontext import canonical_json, parse_json

# Every kind of JSON value, including what json.loads takes but strict parsers refuse or bend:
# integers past 64 bits, NaN and infinities, lone surrogates.
text = st.text(max_size=30) | st.sampled_from(["\ud800", "a\udfffb", "é", "\u2028", "\x00", ""])
values = st.recursive(st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
                      | st.floats() | text,
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                      max_leaves=16)


def same(text: str) -> None:
    """parse_json(text) is json.loads(text): equal reprs (types, float bits, NaN) or the same error."""
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError) as error:
        with pytest.raises(type(error)):
            parse_json(text)
        return
    assert repr(parse_json(text)) == repr(expected)


@settings(max_examples=500, deadline=None)
@given(value=values, ascii_only=st.booleans(), spaced=st.booleans())
def test_parse_json_reads_any_json_text_as_json_loads_does(value, ascii_only, spaced):
    same(json.dumps(value, ensure_ascii=ascii_only, separators=(", ", ": ") if spaced else (",", ":")))


@pytest.mark.parametrize("text", [
    '{"a":1,"a":2}', "-0", "-0.0", "1e400", "-1e400", "1.5e-400", "123456789012345678901234567890",
    "-9223372036854775809", "18446744073709551616", "0.1", "2.2250738585072011e-308", "NaN", "Infinity",
    '"\\ud800"', '"\ud800"', '"\\u0000"', " [1] ", "[1,]", '"\t"', "", "nul", "1 2", "[" * 5000 + "]" * 5000,
])
def test_parse_json_agrees_with_json_loads_on_edge_cases(text):
    same(text)


def test_parse_json_reads_canonical_json_back():
    value = {"b": [1, 2.5, None, True], "a": {"é": "x\ny"}, "n": 10**30}
    assert parse_json(canonical_json(value)) == value
