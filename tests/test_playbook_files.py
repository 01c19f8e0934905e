"""Playbook files: schema, lint (file, line, field), durations, conditions, templates, the CLI."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from vigil_ir.cli import main
from vigil_ir.incidents.models import SEVERITIES, TYPES, Incident
from vigil_ir.playbooks.conditions import evaluate, parse_condition
from vigil_ir.playbooks.durations import add_duration, parse_duration
from vigil_ir.playbooks.loader import (LintError, PlaybookError, lint_paths, load_file, load_library, parse_playbook,
                                  suggest)
from vigil_ir.playbooks.render import PlaybookTemplateError, incident_facts, render_instructions, sample_facts

REPO_PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"

GOOD = textwrap.dedent("""\
    id: data-leak
    title: Personal data breach
    version: "1.2.0"
    description: |
      Use when personal data may have left our control.
    applies_to:
      types: [data_privacy, security]
      severities: [sev1, sev2, sev3]
    roles: [dpo]
    deadlines:
      - id: gdpr-art33
        label: Notify the supervisory authority (GDPR Art. 33)
        duration: 72h
        from: detected_at
        met_by: step:notify-authority
      - id: sec-8k
        label: File the 8-K
        duration: 4d
        business_days: true
        from: step:confirm-scope
    phases:
      - id: detection
        title: Detection and analysis
        steps:
          - id: confirm-scope
            title: Confirm what data and which people are affected
            instructions: |
              Open the access logs for {{ incident.key }} ({{ incident.severity }}).
              {% if incident.lead %}Lead: {{ incident.lead }}{% endif %}
            role: lead
            due_after: 1h30m
            evidence: note
            when: "severity in [sev1, sev2] or security == true"
      - id: notification
        title: Notification
        steps:
          - id: notify-authority
            title: Notify the authority
            role: dpo
            required: false
            evidence: link
    """)


def lint_text(tmp_path: Path, text: str, name: str = "data-leak") -> list[LintError]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return lint_paths([path])[1]


def only_error(tmp_path: Path, text: str, name: str = "data-leak") -> LintError:
    errors = lint_text(tmp_path, text, name)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def edit(text: str, old: str, new: str | None) -> str:
    """Replace the first line whose content is `old` by the lines of `new` (None: delete it),
    each indented like the line replaced."""
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.strip() == old.strip())
    indent = lines[index][:len(lines[index]) - len(lines[index].lstrip())]
    lines[index:index + 1] = [f"{indent}{part}\n" for part in new.split("\n")] if new is not None else []
    return "".join(lines)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# --- a valid file --------------------------------------------------------------------------------

def test_a_valid_file_loads_with_every_field(tmp_path):
    path = tmp_path / "data-leak.yaml"
    path.write_bytes(GOOD.replace("\n", "\r\n").encode())
    file = load_file(path)
    assert file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert file.text.encode() == path.read_bytes()  # CRLF kept: the stored text hashes the same
    playbook = file.playbook
    assert (playbook.id, playbook.version, playbook.roles) == ("data-leak", "1.2.0", ["dpo"])
    gdpr, sec = playbook.deadlines
    assert (gdpr.duration, gdpr.duration_text, gdpr.from_, gdpr.from_step, gdpr.met_by_step) == (
        timedelta(hours=72), "72h", "detected_at", None, "notify-authority")
    assert (sec.business_days, sec.from_step) == (True, "confirm-scope")
    assert [(phase.id, step.id) for phase, step in playbook.iter_steps()] == [
        ("detection", "confirm-scope"), ("notification", "notify-authority")]
    first, second = (step for _, step in playbook.iter_steps())
    assert (first.due_after, first.due_after_text, first.evidence, first.required) == (
        timedelta(minutes=90), "1h30m", "note", True)
    assert (second.due_after, second.due_after_text, second.required, second.evidence) == (None, None, False, "link")
    assert first.applies({"severity": "sev3", "type": "other", "security": True, "status": "investigating"})
    assert not first.applies({"severity": "sev3", "type": "other", "security": False, "status": "investigating"})
    assert second.applies({})


def test_defaults_and_applies_to(tmp_path):
    playbook = parse_playbook(GOOD)
    assert playbook.applies("security", "sev1") and not playbook.applies("availability", "sev1")
    assert not playbook.applies("security", "sev4")
    minimal = parse_playbook(textwrap.dedent("""\
        id: any-thing
        title: Anything
        version: "1.0"
        description: For anything.
        phases: [{id: p, title: P, steps: [{id: s, title: S}]}]
        """))
    assert minimal.applies("other", "sev4") and minimal.deadlines == [] and minimal.roles == []
    step = minimal.phases[0].steps[0]
    assert (step.instructions, step.role, step.required, step.evidence, step.when) == ("", None, True, "none", None)


def test_suggest_matches_type_and_severity_sorted_by_id(tmp_path):
    for name, types in (("zeta", "[security]"), ("alpha", "[]"), ("mid", "[availability]")):
        (tmp_path / f"{name}.yaml").write_text(
            GOOD.replace("id: data-leak", f"id: {name}").replace("types: [data_privacy, security]", f"types: {types}"))
    library = load_library(tmp_path)
    assert [f.playbook.id for f in suggest(library, "security", "sev2")] == ["alpha", "zeta"]
    assert [f.playbook.id for f in suggest(library, "availability", "sev4")] == []


# --- lint errors: each names file, line and field ------------------------------------------------

WHEN = 'when: "severity in [sev1, sev2] or security == true"'
INSTRUCTIONS = "Open the access logs for {{ incident.key }} ({{ incident.severity }})."


@pytest.mark.parametrize("old, new, field, message", [
    ("evidence: note", "evidence: note\ninstruction: typo",
     "phases[0].steps[0].instruction", "unknown field 'instruction' (did you mean 'instructions'?)"),
    ("roles: [dpo]", "roles: [dpo]\nowner: me", "owner", "unknown field 'owner'"),
    ("from: detected_at", "from: detected_at\nstart: now", "deadlines[0].start", "unknown field 'start'"),
    ("due_after: 1h30m", "due_after: 5x", "phases[0].steps[0].due_after",
     "invalid duration '5x' (use e.g. 15m, 4h, 1h30m, 3d)"),
    ("due_after: 1h30m", "due_after: 15", "phases[0].steps[0].due_after", "a number needs a unit"),
    ("due_after: 1h30m", "due_after: 30s", "phases[0].steps[0].due_after", "seconds are not supported"),
    ("duration: 72h", "duration: 0h", "deadlines[0].duration", "must be greater than zero"),
    ("duration: 4d", "duration: 96h", "deadlines[1].duration", "business_days: true needs whole days"),
    (WHEN, 'when: "severity in [sev1, sev5]"', "phases[0].steps[0].when", "'sev5' is not a valid severity"),
    (WHEN, 'when: "(severity == sev1)"', "phases[0].steps[0].when", "parentheses are not supported"),
    (WHEN, 'when: "priority == p1"', "phases[0].steps[0].when", "unknown field 'priority'"),
    ("- id: notification", "- id: Notification", "phases[1].id", "is not kebab-case"),
    ("role: dpo", "role: legal", "phases[1].steps[0].role", "unknown role 'legal' (allowed: lead, comms, scribe, dpo"),
    ("met_by: step:notify-authority", "met_by: step:notify-regulator", "deadlines[0].met_by",
     "unknown step 'notify-regulator'"),
    ("from: step:confirm-scope", "from: step:nope", "deadlines[1].from", "unknown step 'nope'"),
    ("from: detected_at", "from: noticed_at", "deadlines[0].from", "must be detected_at, declared_at, attached_at"),
    ("evidence: link", "evidence: screenshot", "phases[1].steps[0].evidence", "must be 'none', 'note' or 'link'"),
    ("required: false", "required: maybe", "phases[1].steps[0].required", "must be true or false"),
    ('version: "1.2.0"', "version: 1.2", "version", 'quote it, e.g. version: "1.2"'),
    ('version: "1.2.0"', 'version: "v1"', "version", "invalid version 'v1'"),
    ("title: Notify the authority", "title: " + "x" * 201, "phases[1].steps[0].title", "at most 200 characters"),
    ("types: [data_privacy, security]", "types: [privacy]", "applies_to.types[0]", "must be 'security'"),
    ("severities: [sev1, sev2, sev3]", "severities: [p1]", "applies_to.severities[0]", "must be 'sev1'"),
    (INSTRUCTIONS, "{{ incident.key }", "phases[0].steps[0].instructions", "template syntax error"),
    (INSTRUCTIONS, "{{ incident.owner }}", "phases[0].steps[0].instructions", "unknown variable 'incident.owner'"),
    (INSTRUCTIONS, "{{ responder }}", "phases[0].steps[0].instructions", "unknown variable 'responder'"),
    (INSTRUCTIONS, "{{ ''.__class__.__mro__ }}", "phases[0].steps[0].instructions",
     "unsafe template operation refused"),
])
def test_lint_error_names_file_line_and_field(tmp_path, old, new, field, message):
    text = edit(GOOD, old, new)
    error = only_error(tmp_path, text)
    assert error.file == str(tmp_path / "data-leak.yaml")
    assert (error.field, error.line) == (field, line_of(text, new.splitlines()[-1]))
    assert message in error.message
    assert str(error) == f"{error.file}:{error.line}: {field}: {error.message}"


def test_duplicate_ids_are_reported_where_they_repeat(tmp_path):
    text = edit(GOOD, "- id: notify-authority", "- id: confirm-scope")
    text = edit(edit(text, "- id: notification", "- id: detection"), "- id: sec-8k", "- id: gdpr-art33")
    text = edit(text, "met_by: step:notify-authority", None)
    errors = lint_text(tmp_path, text)
    found = {(e.field, e.message) for e in errors}
    assert ("deadlines[1].id", "duplicate deadline 'gdpr-art33' (first at deadlines[0].id)") in found
    assert ("phases[1].id", "duplicate phase 'detection' (first at phases[0].id)") in found
    assert ("phases[1].steps[0].id", "duplicate step 'confirm-scope' (first at phases[0].steps[0].id)") in found
    assert len(errors) == 3
    step_error = next(e for e in errors if e.field.startswith("phases[1].steps"))
    assert step_error.line == [i for i, line in enumerate(text.splitlines(), 1) if "id: confirm-scope" in line][1]


@pytest.mark.parametrize("field", ["id", "title", "version", "description", "phases"])
def test_missing_required_field(tmp_path, field):
    lines = GOOD.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{field}:"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith((" ", "-"))), len(lines))
    errors = lint_text(tmp_path, "".join(lines[:start] + lines[end:]))
    assert any(e.field == field and e.message == "required field is missing" for e in errors), errors


def test_missing_step_fields_and_empty_lists(tmp_path):
    error = only_error(tmp_path, edit(GOOD, "title: Notify the authority", None))
    assert (error.field, error.message) == ("phases[1].steps[0].title", "required field is missing")
    assert error.line == line_of(GOOD, "- id: notify-authority")
    empty = GOOD[:GOOD.index("phases:")] + "phases: []\n"
    empty = edit(edit(empty, "met_by: step:notify-authority", None), "from: step:confirm-scope", "from: detected_at")
    assert [(e.field, e.message) for e in lint_text(tmp_path, empty)] == [("phases", "must not be empty")]
    no_steps = "id: abc\ntitle: t\nversion: '1.0'\ndescription: d\nphases:\n  - id: p\n    title: P\n    steps: []\n"
    error = only_error(tmp_path, no_steps, "abc")
    assert (error.field, error.message, error.line) == ("phases[0].steps", "must not be empty", 8)


def test_id_must_equal_the_file_stem(tmp_path):
    error = only_error(tmp_path, GOOD, name="other-name")
    assert (error.line, error.field) == (1, "id")
    assert error.message == "id 'data-leak' must equal the file name 'other-name'"


def test_two_files_with_the_same_id_in_the_linted_paths(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "data-leak.yaml").write_text(GOOD)
    (tmp_path / "b" / "data-leak.yml").write_text(GOOD)
    library, errors = lint_paths([tmp_path / "a", tmp_path / "b"])
    assert list(library) == ["data-leak"]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'b' / 'data-leak.yml'}:1: id: duplicate playbook id 'data-leak' (also in "
        f"{tmp_path / 'a' / 'data-leak.yaml'})"]


def test_yaml_syntax_error_names_the_line(tmp_path):
    text = GOOD.replace("    roles: [dpo]", "").replace("title: Detection and analysis", "title: [Detection")
    error = only_error(tmp_path, text)
    assert error.field == "" and error.message.startswith("YAML syntax error: ")
    assert error.line in (line_of(text, "title: [Detection"), line_of(text, "title: [Detection") + 1)
    assert str(error).startswith(f"{error.file}:{error.line}: YAML syntax error")


@pytest.mark.parametrize("text, message", [
    ("", "found an empty file"),
    ("- a\n- b\n", "found a list"),
    ("just text\n", "found a str"),
    ("id: a\n---\nid: b\n", "YAML syntax error: found another document"),
    ("id: !!python/object/apply:os.system [echo]\n", "YAML syntax error: could not determine a constructor"),
])
def test_files_that_are_not_one_mapping(tmp_path, text, message):
    assert message in only_error(tmp_path, text).message


def test_duplicate_yaml_keys_are_errors(tmp_path):
    text = edit(GOOD, "evidence: note", "evidence: note\nevidence: none")
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "evidence: none")
    assert error.message == "duplicate key 'evidence' (only the last one counts)"


def test_errors_from_every_file_and_every_kind_are_collected(tmp_path):
    (tmp_path / "data-leak.yaml").write_text(GOOD.replace("due_after: 1h30m", "due_after: 5x").replace(
        "role: dpo", "role: legal").replace("{{ incident.key }}", "{{ incident.nope }}"))
    (tmp_path / "second.yaml").write_text("id: second\n")
    (tmp_path / "notes.txt").write_text("ignored")
    library, errors = lint_paths([tmp_path, tmp_path / "missing.yaml"])
    assert library == {}
    fields = [(Path(e.file).name, e.field) for e in errors]
    assert ("data-leak.yaml", "phases[0].steps[0].due_after") in fields
    assert ("data-leak.yaml", "phases[1].steps[0].role") in fields
    assert ("data-leak.yaml", "phases[0].steps[0].instructions") in fields
    assert ("second.yaml", "title") in fields and ("missing.yaml", "") in fields
    with pytest.raises(PlaybookError) as raised:
        load_library(tmp_path)
    assert len(raised.value.errors) == len(errors) - 1 and "playbook errors:" in str(raised.value)


def test_encoding_problems(tmp_path):
    (tmp_path / "latin.yaml").write_bytes(b"id: latin\ntitle: caf\xe9\n")
    assert [str(e) for e in lint_paths([tmp_path])[1]] == [f"{tmp_path / 'latin.yaml'}:2: not UTF-8 text"]
    (tmp_path / "latin.yaml").unlink()
    path = tmp_path / "data-leak.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())  # a byte-order mark is fine and kept in the text
    file = load_file(path)
    assert file.text.encode() == path.read_bytes() and file.playbook.id == "data-leak"


def test_the_example_in_the_docs_is_valid(tmp_path):
    docs = (Path(__file__).resolve().parents[1] / "docs" / "playbooks.md").read_text()
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "personal-data-breach.yaml").write_text(example)
    assert lint_paths([tmp_path])[1] == []


def test_template_error_line_points_into_the_block(tmp_path):
    text = GOOD.replace("{% if incident.lead %}", "{% if incident.lead %}{{ incident.oops }}")
    assert only_error(tmp_path, text).line == line_of(text, "incident.oops")


def test_parse_playbook_raises_with_every_error():
    with pytest.raises(PlaybookError) as raised:
        parse_playbook(GOOD.replace("due_after: 1h30m", "due_after: 2 h").replace("role: dpo", "role: x"), "stored")
    assert [str(e).split(": ")[1] for e in raised.value.errors] == [
        "phases[0].steps[0].due_after", "phases[1].steps[0].role"]
    assert all(e.file == "stored" for e in raised.value.errors)


# --- durations ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("15m", timedelta(minutes=15)), ("4h", timedelta(hours=4)), ("1h30m", timedelta(minutes=90)),
    ("3d", timedelta(days=3)), ("1d12h", timedelta(hours=36)), ("90m", timedelta(minutes=90)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5x", "15", "4H", "1 h", " 4h", "30s", "0m", "0d0h", "30m1h", "1h1h",
                                  "1.5h", "-4h", "h", "99999999999999d"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


UTC = timezone.utc


def test_add_duration_plain_and_business_days_across_a_weekend():
    thursday = datetime(2025, 1, 9, 14, 0, tzinfo=UTC)
    assert add_duration(thursday, timedelta(hours=72), False) == datetime(2025, 1, 12, 14, 0, tzinfo=UTC)
    # SEC 8-K: 4 business days from Thursday skips Saturday and Sunday → Wednesday, same time.
    assert add_duration(thursday, timedelta(days=4), True) == datetime(2025, 1, 15, 14, 0, tzinfo=UTC)
    friday = datetime(2025, 1, 10, 15, 0, tzinfo=UTC)
    assert add_duration(friday, timedelta(days=1), True) == datetime(2025, 1, 13, 15, 0, tzinfo=UTC)
    saturday = datetime(2025, 1, 11, 10, 0, tzinfo=UTC)
    assert add_duration(saturday, timedelta(days=1), True) == datetime(2025, 1, 13, 10, 0, tzinfo=UTC)
    assert add_duration(datetime(2025, 1, 6, 9), timedelta(days=5), True) == datetime(2025, 1, 13, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="whole days"):
        add_duration(thursday, timedelta(hours=36), True)


# --- conditions ---------------------------------------------------------------------------------

def facts(severity="sev2", type="security", security=True, status="investigating"):  # noqa: A002
    return {"severity": severity, "type": type, "security": security, "status": status}


@pytest.mark.parametrize("condition, true_for, false_for", [
    ("severity in [sev1, sev2]", facts(), facts(severity="sev3")),
    ("severity not in [sev1, sev2]", facts(severity="sev4"), facts()),
    ("type == data_privacy", facts(type="data_privacy"), facts()),
    ("type != data_privacy", facts(), facts(type="data_privacy")),
    ("security == true", facts(), facts(security=False)),
    ("security == false", facts(security=False), facts()),
    ("status in [monitoring, resolved]", facts(status="resolved"), facts()),
    ("severity == sev1 or type == availability", facts(type="availability"), facts()),
    ("severity == sev1 and type == availability", facts(severity="sev1", type="availability"),
     facts(severity="sev1")),
])
def test_condition_truth(condition, true_for, false_for):
    assert evaluate(condition, true_for) is True
    assert evaluate(condition, false_for) is False


def test_and_binds_tighter_than_or():
    condition = parse_condition("severity == sev1 or severity == sev2 and security == true")
    table = {("sev1", False): True, ("sev2", True): True, ("sev2", False): False, ("sev3", True): False}
    for (severity, security), expected in table.items():
        assert condition.evaluate(facts(severity=severity, security=security)) is expected
    assert condition.fields == {"severity", "security"} and str(condition) == condition.text


@pytest.mark.parametrize("text, message", [
    ("", "empty condition"),
    ("severity in sev1", "expected `[`"),
    ("severity in [sev1", "expected `,` or `]` at the end"),
    ("severity in [sev1,]", "expected a severity value"),
    ("severity = sev1", "expected `in`, `not in`, `==` or `!=`"),
    ("severity == sev1 && type == other", "expected `and` or `or`"),
    ("(severity == sev1)", "parentheses are not supported"),
    ("security == yes", "'yes' is not a valid security (use true, false)"),
    ("status == closed", "'closed' is not a valid status"),
    ("type in [outage]", "'outage' is not a valid type"),
    ("__import__('os') == x", "unknown field '__import__'"),
    ("severity == sev1 and", "expected a field"),
    ("Severity == sev1", "unknown field 'Severity'"),
])
def test_bad_conditions(text, message):
    with pytest.raises(ValueError, match="condition") as raised:
        parse_condition(text)
    assert message in str(raised.value)


def test_condition_needs_its_facts():
    with pytest.raises(ValueError, match="status"):
        evaluate("status == resolved", {"severity": "sev1"})


# --- templates ----------------------------------------------------------------------------------

def test_incident_facts_and_rendering():
    at = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    incident = Incident(number=7, title="DB down", type="availability", security=False, severity="sev1",
                        initial_severity="sev1", status="identified", declared_by="U1", declared_at=at,
                        detected_at=at, lead="U9", channel_id="C7")
    facts_ = incident_facts(incident)
    assert facts_ == {"key": "INC-7", "number": 7, "title": "DB down", "severity": "sev1", "type": "availability",
                      "security": False, "status": "identified", "lead": "U9", "channel": "C7",
                      "declared_at": "2025-03-04T05:06:07.890000Z", "detected_at": "2025-03-04T05:06:07.890000Z"}
    template = ("{{ incident.key }} <{{ incident.title }}> & {{ incident.lead }}\n"
                "{% if incident.security %}secret{% endif %}end\n")
    assert render_instructions(template, facts_) == "INC-7 <DB down> & U9\nend\n"  # no autoescape; newline kept


@pytest.mark.parametrize("template", [
    "{{ ''.__class__.__mro__ }}", "{{ incident.__dict__ }}", "{{ lipsum.__globals__ }}",
    "{% for i in range(10**9) %}{% endfor %}", "{{ incident.get('key') }}", "{{ 1 / 0 }}",
])
def test_the_sandbox_refuses(template):
    with pytest.raises(PlaybookTemplateError):
        render_instructions(template, next(sample_facts()))


def test_samples_cover_every_severity_and_type():
    samples = list(sample_facts())
    assert {(s["severity"], s["type"]) for s in samples} == {(s, t) for s in SEVERITIES for t in TYPES}
    assert any(s["lead"] is None for s in samples) and any(s["channel"] is None for s in samples)


# --- CLI ----------------------------------------------------------------------------------------

def run(*args, env=None):
    return CliRunner().invoke(main, ["playbooks", *args], env=env)


def test_cli_lint_ok_and_errors(tmp_path):
    (tmp_path / "data-leak.yaml").write_text(GOOD)
    result = run("lint", str(tmp_path))
    assert (result.exit_code, result.output) == (0, "OK: 1 playbook\n")
    broken = GOOD.replace("data-leak", "broken").replace("due_after: 1h30m", "due_after: 5x")
    (tmp_path / "broken.yaml").write_text(broken)
    result = run("lint", str(tmp_path))
    assert result.exit_code == 1
    line = line_of(GOOD, "due_after")
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'broken.yaml'}:{line}: phases[0].steps[0].due_after: invalid duration '5x' "
        "(use e.g. 15m, 4h, 1h30m, 3d)",
        "2 files, 1 error"]
    assert result.stdout == ""


def test_cli_lint_defaults_to_the_library_directory(tmp_path):
    (tmp_path / "data-leak.yaml").write_text(GOOD)
    assert run("lint", env={"VIGIL_PLAYBOOKS_DIR": str(tmp_path)}).output == "OK: 1 playbook\n"
    result = run("lint", env={"VIGIL_PLAYBOOKS_DIR": str(tmp_path / "nowhere")})
    assert result.exit_code == 1 and "no such file or directory" in result.stderr


def test_cli_list_plain_table_and_invalid_library(tmp_path):
    (tmp_path / "data-leak.yaml").write_text(GOOD)
    (tmp_path / "any-thing.yaml").write_text(GOOD.replace("data-leak", "any-thing").replace(
        "types: [data_privacy, security]", "types: []").replace('"1.2.0"', '"10.0"'))
    result = run("list", env={"VIGIL_PLAYBOOKS_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "ID         VERSION  TITLE                 TYPES                   SEVERITIES",
        "any-thing  10.0     Personal data breach  any                     sev1, sev2, sev3",
        "data-leak  1.2.0    Personal data breach  data_privacy, security  sev1, sev2, sev3"]
    (tmp_path / "bad.yaml").write_text("id: bad\n")
    result = run("list", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'bad.yaml'}:1: title: required field is missing" in result.stderr
    assert "playbook error(s)" in result.stderr


def test_cli_list_rich_table_on_a_terminal(tmp_path, monkeypatch):
    (tmp_path / "data-leak.yaml").write_text(GOOD.replace("title: Personal data breach", "title: '[EU] breach'", 1))
    monkeypatch.setattr("vigil_ir.playbooks.cli._stdout_is_terminal", lambda: True)
    result = run("list", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "[EU] breach" in result.output  # shown as text, not taken for rich markup
    assert "┃" in result.output or "|" in result.output


# --- the shipped library ------------------------------------------------------------------------

def test_every_shipped_playbook_loads_and_renders_for_every_severity_and_type():
    if not sorted(REPO_PLAYBOOKS.glob("*.yaml")):
        pytest.skip(f"no shipped playbooks in {REPO_PLAYBOOKS} yet")
    library, errors = lint_paths([REPO_PLAYBOOKS])
    assert errors == [], "\n".join(map(str, errors))
    assert len(library) == len(list(REPO_PLAYBOOKS.glob("*.y*ml")))
    for file in library.values():
        assert yaml.safe_load(file.text)["id"] == file.playbook.id
        for severity in SEVERITIES:
            for kind in TYPES:
                facts_ = {**next(sample_facts()), "severity": severity, "type": kind, "security": kind == "security"}
                for _, step in file.playbook.iter_steps():
                    step.applies(facts_)
                    assert render_instructions(step.instructions, facts_).strip() or not step.instructions.strip()
