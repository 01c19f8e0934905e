"""Property-based tests of playbook YAML (`parse_playbook`): text, mutated playbooks, YAML's odd corners.

Invariants: parse_playbook returns a Playbook or raises PlaybookError, never anything else; every
error names the file and a line or a field, and says what is wrong in one line. No database.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from vigil_ir.playbooks.loader import PlaybookError, parse_playbook
from tests.fuzzing import SLACK_SYNTAX, fuzz, hostile_text, json_values

FIXTURES = Path(__file__).parent / "playbook_fixtures"
BASES = [yaml.safe_load(path.read_text()) for path in sorted(FIXTURES.glob("*.yaml"))]
SOURCE = "playbooks/fuzzed.yaml"

yaml_scalars = st.one_of(json_values, st.dates(), st.datetimes(), st.sampled_from(
    ["30m", "1h30m", "4d", "0m", "99999999d", "-1d", "1.5h", "step:missing", "step:", "detected_at", "declared_at",
     "severity in [sev1, sev2]", "type == security", "severity in [", "not (", "{{ incident.title }}",
     "{% for x in y %}", "{{ ''.__class__ }}", "lead", "comms", "Lead", "none", "note", "link", "1.0", "1.0.0",
     "yes", "no", "~", "kebab-case-id", "Not Kebab", "a" * 300] + SLACK_SYNTAX))


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, (*prefix, index))


@st.composite
def mutated_playbooks(draw) -> str:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        candidates = [p for p in paths(data) if p]
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["delete", "replace", "replace", "duplicate", "rename"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["instruction", "titel", "Due_After", "when ", "id"]))] = parent.pop(path[-1])
        else:
            parent[path[-1]] = draw(yaml_scalars)
    text = yaml.safe_dump(data, allow_unicode=draw(st.booleans()), sort_keys=draw(st.booleans()))
    lines = text.splitlines(keepends=True)
    if lines and draw(st.integers(0, 3)) == 0:  # damage the text itself
        index = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "indent", "dedent", "insert"]))
        if edit == "drop":
            del lines[index]
        elif edit == "indent":
            lines[index] = "   " + lines[index]
        elif edit == "dedent":
            lines[index] = lines[index].lstrip()
        else:
            lines.insert(index, draw(st.sampled_from(YAML_ODDITIES + ["- x\n", "key: value\n", ":\n", "\t- tab\n"])))
    return "".join(lines)


YAML_ODDITIES = [
    "a: &x [*x]\n", "a: &x {b: *x}\n", "x: &a [1]\ny: *a\n", "a: " + "[" * 200 + "]" * 200 + "\n",
    "? [a]\n: b\n", "1: 2\n", "version: 2025-02-30\n", "version: 1" + "0" * 5000 + "\n", "id: !!binary aGVsbG8=\n",
    "!!python/object:os.system {}\n", "---\na: 1\n---\nb: 2\n", "id: a\x00b\n", "id: a\x07b\n", "\ufeffid: bom\n",
    "id: x\nid: y\n", "phases: !!set {a, b}\n", "phases: !!omap [a: 1]\n", "title: .nan\n", "title: .inf\n",
    "lead: &anchor\n  - <<: *anchor\n", "<<: {id: merged}\n", "phases:\n  - steps:\n      - when: '" + "(" * 500 + "'\n",
    "phases:\n  - id: p\n    title: P\n    steps:\n      - id: [a]\n        title: T\n", "%YAML 1.1\n---\nid: x\n", "%TAG ! tag:x,2000:\n---\n!a b\n", "'unterminated\n", "{{ not: yaml }}\n",
]


def assert_parses_or_explains(text: str) -> None:
    try:
        parse_playbook(text, SOURCE)
    except PlaybookError as failure:
        assert failure.errors
        for error in failure.errors:
            assert error.file == SOURCE
            assert error.line is not None or error.field, error
            assert error.message.strip() and "\n" not in error.message, error
            assert "Traceback" not in str(error)


@fuzz(150)
@given(text=mutated_playbooks())
def test_mutated_playbooks_parse_or_name_line_and_field(text):
    assert_parses_or_explains(text)


@fuzz(100)
@given(text=st.one_of(st.text(max_size=300), hostile_text, st.sampled_from(YAML_ODDITIES),
                      st.lists(st.sampled_from(YAML_ODDITIES), min_size=2, max_size=4).map("".join),
                      json_values.map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
def test_arbitrary_text_parses_or_is_explained(text):
    assert_parses_or_explains(text)


def test_the_odd_corners_of_yaml_each_get_a_line():
    for text in YAML_ODDITIES:
        assert_parses_or_explains(text)
    for text in ("a: &x [*x]\n", "version: 2025-02-30\n", "a: " + "[" * 200 + "]" * 200 + "\n", "id: a\x00b\n"):
        try:
            parse_playbook(text, SOURCE)
        except PlaybookError as failure:
            assert failure.errors[0].line == 1, failure.errors
