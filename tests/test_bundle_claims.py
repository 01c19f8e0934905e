"""Every claim of a bundle checked, by `vigil verify --bundle` and by the verify.py shipped in the bundle.

Each tamper class is a careful forger's edit: the file hashes in the manifest are recomputed, so
only the checks of what the bundle claims (period, sequences, notes, generator, CSV twins, derived
columns, packets) can catch it. Each runs through both checkers; verify.py runs on a plain
interpreter that cannot import vigil_ir (`-I -S`, from an empty folder).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from vigil_ir.cli import main
from vigil_ir.exports.bundle import checker as bundle_checker
from vigil_ir.exports.bundle.verification import verify_bundle
from tests.test_bundle import export, manifest_of, read, seed


@pytest.fixture
def bundle(db, tmp_path) -> Path:
    seed(db)
    return export(db, tmp_path)


def forge(source: Path, target: Path, *, files: dict | None = None, drop=(), add=None, manifest=None) -> Path:
    """Copy a bundle with some members replaced (name -> new bytes), dropped or added, the manifest
    edited by `manifest(document)`, and every changed file's SHA-256 and size recomputed in it."""
    files = files or {}
    with zipfile.ZipFile(source) as old:
        document = json.loads(old.read("manifest.json"))
        for entry in document["files"]:
            if entry["path"] in files:
                entry["sha256"] = hashlib.sha256(files[entry["path"]]).hexdigest()
                entry["bytes"] = len(files[entry["path"]])
        if manifest:
            manifest(document)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
            for info in old.infolist():
                if info.filename in drop:
                    continue
                data = files.get(info.filename, old.read(info.filename))
                if info.filename == "manifest.json":
                    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
                new.writestr(info, data)
            for name, data in (add or {}).items():
                new.writestr(name, data)
    return target


def edited_table(bundle: Path, name: str, match: dict, changes: dict) -> dict[str, bytes]:
    """`<name>.json` and `<name>.csv` with the rows matching `match` changed consistently in both."""
    lines = read(bundle, f"{name}.json").decode().split("\n")
    rows = []
    for index, line in enumerate(lines):
        if line.startswith("{"):
            row = json.loads(line.rstrip(","))
            if all(row.get(k) == v for k, v in match.items()):
                row.update(changes)
                lines[index] = json.dumps(row, ensure_ascii=False) + ("," if line.endswith(",") else "")
            rows.append(row)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(rows[0]))
    for row in rows:
        writer.writerow([bundle_checker.csv_cell(value) for value in row.values()])
    return {f"{name}.json": "\n".join(lines).encode(), f"{name}.csv": ("\ufeff" + out.getvalue()).encode()}


def both(bundle: Path, tmp_path: Path, checked: Path) -> tuple[int, str, int, str]:
    """(exit code, output) of `vigil verify --bundle` and of the bundle's own verify.py on `checked`."""
    cli = CliRunner().invoke(main, ["verify", "--bundle", str(checked)], env={"DATABASE_URL": "postgresql://nowhere:1/x"})
    empty = tmp_path / "plain"
    empty.mkdir(exist_ok=True)
    (empty / "verify.py").write_bytes(read(bundle, "verify.py"))  # the untampered bundle's checker
    plain = subprocess.run([sys.executable, "-I", "-S", "verify.py", str(checked)], cwd=empty, capture_output=True,
                           text=True, timeout=300)
    return cli.exit_code, cli.output, plain.returncode, plain.stdout + plain.stderr


def assert_broken(bundle: Path, tmp_path: Path, checked: Path, *expected: str) -> None:
    code, output, plain_code, plain_output = both(bundle, tmp_path, checked)
    for name, (status, text) in {"vigil verify --bundle": (code, output), "verify.py": (plain_code, plain_output)}.items():
        assert status == 1, (name, text)
        for line in expected:
            assert f"BROKEN: {line}" in text, (name, line, text)


def test_verify_py_runs_on_a_plain_interpreter_without_vigil(bundle, tmp_path):
    empty = tmp_path / "plain"
    empty.mkdir()
    probe = subprocess.run([sys.executable, "-I", "-S", "-c", "import vigil_ir"], cwd=empty, capture_output=True)
    assert probe.returncode != 0  # so what passes below passed without Vigil
    assert read(bundle, "verify.py") == Path(bundle_checker.__file__).read_bytes()
    code, output, plain_code, plain_output = both(bundle, tmp_path, bundle)
    assert code == 0 and plain_code == 0, (output, plain_output)
    fingerprint = json.loads(read(bundle, "manifest.sig"))["key_fingerprint"]
    for text in (output, plain_output):
        assert "OK: " in text and "every claim of the manifest checked" in text
    assert f"signed by {fingerprint}" in plain_output  # the standalone check verified the Ed25519 signature
    assert f"the signature is valid for key {fingerprint}" in output
    listed = {entry["path"]: entry for entry in manifest_of(bundle)["files"]}
    assert listed["verify.py"]["sha256"] == hashlib.sha256(read(bundle, "verify.py")).hexdigest()


def test_an_edited_period_is_caught_by_the_rows_and_the_readme(bundle, tmp_path):
    def later_start(document):
        document["period"]["start"] = "2025-02-01T00:00:00.000000Z"
    forged = forge(bundle, tmp_path / "f.zip", manifest=later_start)
    assert_broken(bundle, tmp_path, forged,
                  "incidents.json: INC-2 (row 1): declared_at 2025-01-10T09:00:00.000000Z is outside the period "
                  "2025-02-01T00:00:00.000000Z to 2025-04-01T00:00:00.000000Z (the selection: declared in the period)",
                  "README.md: does not say '# Vigil evidence bundle: 2025-02-01T00:00:00.000000Z to")


def test_an_edited_sequence_count_and_gap_are_caught(bundle, tmp_path):
    def fewer(document):
        incidents = document["sequences"][0]
        incidents["count"], incidents["gaps"] = 4, []
    forged = forge(bundle, tmp_path / "f.zip", manifest=fewer)
    assert_broken(bundle, tmp_path, forged, "manifest.json: sequences INC-: count is 4; incidents.json says 3",
                  "manifest.json: sequences INC-: INC-4 is missing from incidents.json and from the gaps")


def test_an_edited_note_is_caught(bundle, tmp_path):
    def no_notes(document):
        document["notes"] = [{"section": "period", "status": "open", "detail": "may still change"}]
    forged = forge(bundle, tmp_path / "f.zip", manifest=no_notes)
    assert_broken(bundle, tmp_path, forged,
                  "manifest.json: notes: no note that no configuration was recorded (policy/config_versions.json is empty)",
                  "manifest.json: notes: a note says the period is open, but it ended (2025-04-01T00:00:00.000000Z) "
                  "before the bundle was generated (2025-04-10T12:00:00.000000Z)")


def test_an_edited_generator_is_caught(bundle, tmp_path):
    def someone_else(document):
        document["generated_by"] = "cli:mallory"
        document["generated_at"] = "2025-04-11T12:00:00.000000Z"
    forged = forge(bundle, tmp_path / "f.zip", manifest=someone_else)
    assert_broken(bundle, tmp_path, forged,
                  "README.md: does not say 'Generated 2025-04-11T12:00:00.000000Z by cli:mallory.'",
                  "incidents/INC-2/INC-2.json: integrity.generated_at 2025-04-10T12:00:00.000000Z differs from the "
                  "manifest's generated_at 2025-04-11T12:00:00.000000Z")


def test_a_csv_copy_that_disagrees_with_its_json_is_caught(bundle, tmp_path):
    data = read(bundle, "incidents.csv").replace(b"Disk filling up", b"Disk fine")
    forged = forge(bundle, tmp_path / "f.zip", files={"incidents.csv": data})
    assert_broken(bundle, tmp_path, forged, "incidents.csv: row 2 (INC-3), column title: 'Disk fine' differs from "
                                            "its JSON twin (which renders as 'Disk filling up')")


def test_an_edited_derived_column_is_recomputed_from_the_event_log(bundle, tmp_path):
    files = edited_table(bundle, "incidents", {"key": "INC-2"}, {"minutes_to_acknowledge": 0.5, "severity_final": "sev4"})
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged,
                  "incidents.json: INC-2 (row 1), column minutes_to_acknowledge: 0.5; its events in "
                  "incident_events.json say 1.0",
                  "incidents.json: INC-2 (row 1), column severity_final: 'sev4'; its events in incident_events.json "
                  "say 'sev2'")


def test_an_edited_review_lateness_is_recomputed(bundle, tmp_path):
    files = edited_table(bundle, "risk_reviews", {"review_ref": "RRV-1"}, {"days_late": 3, "on_time": False})
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged, "risk_reviews.json: RRV-1 (row 1), column days_late: 3; recomputed from "
                                            "its other columns and the period: 0")


def test_an_edited_summary_column_disagrees_with_the_packet(bundle, tmp_path):
    files = edited_table(bundle, "incident_events", {"stream": "incident:2", "seq": 5},
                         {"summary": "added note #7: \"all fine\""})
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged,
                  "incidents/INC-2/INC-2.html: timeline: incident:2 seq 5: the text differs from the event log's "
                  "summary column")


def test_a_population_stream_repeated_in_the_audit_trail_is_caught(bundle, tmp_path):
    """Layout 2 lists each event once: an incident stream given whole in incident_events may not come
    back in audit_log (with the manifest's segment for it added too)."""
    rows = [row for row in bundle_rows(bundle, "incident_events") if row["stream"] == "incident:2"]
    trail = bundle_rows(bundle, "audit_log")
    merged = sorted(trail + rows, key=lambda row: (row["stream"], row["seq"]))
    text = "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in merged) + "\n]\n"
    csv_text, segment = _csv_of(merged), _whole_stream_segment("incident:2", rows)

    def add_segment(document):
        segments = document["event_log"]["segments"]["audit_log.json"]
        segments.append(segment)
        segments.sort(key=lambda s: s["stream"])
        for entry in document["files"]:
            if entry["path"].startswith("audit_log."):
                entry["rows"] = len(merged)
    forged = forge(bundle, tmp_path / "f.zip", manifest=add_segment,
                   files={"audit_log.json": text.encode(), "audit_log.csv": csv_text.encode()})
    assert_broken(bundle, tmp_path, forged, "audit_log.json: stream incident:2: its every event is in "
                                            "incident_events.json; layout 2 lists a stream once")


def test_a_summary_edited_everywhere_alike_is_rewritten_from_its_data(bundle, tmp_path):
    """The summary is not hashed: edited in the event log (JSON and CSV alike; the packet's timeline is
    checked against it), it still has to be the sentence the event's hashed data gives."""
    changes = {"summary": "added note #7: \"all fine\""}
    files = edited_table(bundle, "incident_events", {"stream": "incident:2", "seq": 5}, changes)
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    original = next(row for row in bundle_rows(bundle, "incident_events") if (row["stream"], row["seq"]) == ("incident:2", 5))
    assert_broken(bundle, tmp_path, forged,
                  f"incident_events.json: stream incident:2 seq 5, column summary: 'added note #7: \"all fine\"' is "
                  f"not what its data says ({original['summary']!r}, with people named)")


def test_a_person_renamed_in_a_summary_is_caught_by_the_people_directory(bundle, tmp_path):
    rows = bundle_rows(bundle, "incident_events")
    row = next(r for r in rows if r["kind"] == "incident.role_assigned" and "U0LEAD (name unknown)" in r["summary"])
    renamed = {"summary": row["summary"].replace("U0LEAD (name unknown)", "Mallory Stone (U0LEAD)")}
    match = {"stream": row["stream"], "seq": row["seq"]}
    files = edited_table(bundle, "incident_events", match, renamed)
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged,
                  f"incident_events.json: stream {row['stream']} seq {row['seq']}, column summary: names U0LEAD "
                  f"'Mallory Stone', which people.json does not give as their name in the period")


def _csv_of(rows: list[dict]) -> str:
    """An event-log CSV file of `rows`, as the bundle writes one (BOM, CRLF, cells made safe)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(rows[0]))
    for row in rows:
        writer.writerow([bundle_checker.csv_cell(value) for value in row.values()])
    return "\ufeff" + out.getvalue()


def _whole_stream_segment(stream: str, rows: list[dict]) -> dict:
    """The manifest's segment for a stream given whole (from seq 1) in `rows`."""
    return {"stream": stream, "first_seq": 1, "last_seq": rows[-1]["seq"], "prev_hash": "0" * 64,
            "head_hash": rows[-1]["hash"], "events": len(rows)}


def bundle_rows(bundle: Path, name: str) -> list[dict]:
    return json.loads(read(bundle, f"{name}.json"))


def test_an_edited_packet_is_caught(bundle, tmp_path):
    packet = json.loads(read(bundle, "incidents/INC-2/INC-2.json"))
    packet["incident"]["lead"] = "U0MALLORY"
    packet["event_log"]["last_seq"] -= 1  # a packet that stops short of the stream's head
    html = read(bundle, "incidents/INC-2/INC-2.html")
    assert b"<tr><td>6</td><td>2025-01-10 09:30:00 UTC" in html
    html = html.replace(b"<tr><td>6</td><td>2025-01-10 09:30:00 UTC", b"<tr><td>6</td><td>2025-01-10 09:45:00 UTC")
    forged = forge(bundle, tmp_path / "f.zip", files={
        "incidents/INC-2/INC-2.json": (json.dumps(packet, indent=2) + "\n").encode(),
        "incidents/INC-2/INC-2.html": html})
    last = packet["event_log"]["last_seq"]
    assert_broken(bundle, tmp_path, forged,
                  "incidents/INC-2/INC-2.json: incident.lead: 'U0MALLORY'; its events say 'U0LEAD'",
                  f"incidents/INC-2/INC-2.json: event_log.last_seq is {last}; the event log incident_events.json has "
                  f"{last + 1} for incident:2",
                  "incidents/INC-2/INC-2.html: timeline: no row for incident:2 seq 6 with its times")


def test_a_packet_that_repeats_its_events_or_comes_as_markdown_is_caught(bundle, tmp_path):
    """Layout 2 packets name their rows in the event log; events written into the packet again, or a
    Markdown packet listed in the manifest, do not belong to it."""
    packet = json.loads(read(bundle, "incidents/INC-2/INC-2.json"))
    packet["events"] = [row for row in bundle_rows(bundle, "incident_events") if row["stream"] == "incident:2"]
    markdown = b"# INC-2\n"

    def list_markdown(document):
        document["files"].append({"path": "incidents/INC-2/INC-2.md", "sha256": hashlib.sha256(markdown).hexdigest(),
                                  "bytes": len(markdown), "rows": None, "section": "E3", "description": "packet",
                                  "query": "incident INC-2"})
        document["files"].sort(key=lambda entry: entry["path"])
    forged = forge(bundle, tmp_path / "f.zip", manifest=list_markdown, add={"incidents/INC-2/INC-2.md": markdown},
                   files={"incidents/INC-2/INC-2.json": (json.dumps(packet, indent=2) + "\n").encode()})
    assert_broken(bundle, tmp_path, forged,
                  "incidents/INC-2/INC-2.json: repeats the events (layout 2 packets name their rows in "
                  "incident_events.json instead)",
                  "incidents/INC-2/INC-2.md: a Markdown packet, which layout 2 does not have")


def test_an_extra_and_a_missing_file_are_caught(bundle, tmp_path):
    forged = forge(bundle, tmp_path / "f.zip", drop={"pirs.csv"}, add={"incidents/INC-9/INC-9.md": b"# made up"})
    assert_broken(bundle, tmp_path, forged, "pirs.csv: listed in the manifest but missing from the bundle",
                  "incidents/INC-9/INC-9.md: in the bundle but not listed in the manifest")


def test_a_whole_packet_removed_from_the_manifest_too_is_caught(bundle, tmp_path):
    gone = {f"incidents/INC-3/INC-3.{fmt}" for fmt in ("html", "json")}

    def unlist(document):
        document["files"] = [entry for entry in document["files"] if entry["path"] not in gone]
    forged = forge(bundle, tmp_path / "f.zip", drop=gone, manifest=unlist)
    assert_broken(bundle, tmp_path, forged, "incidents/INC-3/: INC-3 is in incidents.json but has no packet")


def test_awkward_text_in_events_still_verifies_in_both(db, tmp_path):
    """Line breaks, bidi controls, markup and formula starts survive every rendering the checks compare."""
    from datetime import date

    from vigil_ir.incidents import service
    from tests.test_bundle import step

    seed(db)
    text = "=cmd|' /C calc'!A0\nsecond line <b>&amp;</b> \u202eexe.pdf\r\n\u2066'quoted' \"double\"\u2069 ＠x"
    step(db, date(2025, 3, 1), 5, "INC-5", lambda s, i: service.add_note(s, incident=i, actor="U0A", text=text))
    bundle = export(db, tmp_path)
    code, output, plain_code, plain_output = both(bundle, tmp_path, bundle)
    assert code == 0 and plain_code == 0, (output, plain_output)


def test_a_security_incident_left_out_of_its_list_is_caught(bundle, tmp_path):
    header = read(bundle, "security_incidents.csv").split(b"\r\n")[0] + b"\r\n"
    files = {"security_incidents.json": b"[]\n", "security_incidents.csv": header}

    def none_listed(document):
        for entry in document["files"]:
            if entry["path"].startswith("security_incidents."):
                entry["rows"] = 0
    forged = forge(bundle, tmp_path / "f.zip", files=files, manifest=none_listed)
    assert_broken(bundle, tmp_path, forged, "security_incidents.json: INC-2 is missing: its events flag it a security "
                                            "incident before the period end")


def test_an_edited_register_level_is_recomputed_from_the_methodology(bundle, tmp_path):
    files = edited_table(bundle, "risk_register_2025-03-31", {"risk_ref": "RISK-1"},
                         {"residual_level": "low", "inherent_score": 12})
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged,
                  "risk_register_2025-03-31.json: RISK-1 (row 1), column inherent_score: 12; methodology 2025.1 gives 16",
                  "risk_register_2025-03-31.json: RISK-1 (row 1), column residual_level: 'low'; methodology 2025.1 "
                  "gives 'medium'")


def test_an_edited_pir_record_and_cadence_are_caught(bundle, tmp_path):
    files = {**edited_table(bundle, "pirs", {"incident_ref": "INC-2"}, {"record_hash": "0" * 64, "status": "overdue"}),
             **edited_table(bundle, "update_cadence", {"incident_ref": "INC-3"}, {"reminders_sent": 7})}
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged,
                  "pirs.json: INC-2 (row 1), column status: 'overdue'; incidents.json says pir_status 'completed'",
                  "pirs.json: INC-2 (row 1), column record_hash: '" + "0" * 64 + "'; the incident's pir.completed event",
                  "update_cadence.json: INC-3 due 2025-02-01T13:00:00.000000Z (row 1), column reminders_sent: 7; recomputed from "
                  "its times: 0")


def test_values_of_the_wrong_type_are_reported_not_a_crash(bundle, tmp_path):
    files = edited_table(bundle, "incidents", {"key": "INC-3"}, {"declared_at": 5, "detected_at": ["x"]})
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged, "incidents.json: INC-3 (row 2): declared_at 5 is not a time")


def _as_layout_1(bundle: Path, target: Path, edit_event=None) -> Path:
    """The bundle rewritten as a bundle of layout 1 (before each event was written once): no `layout`
    in the manifest, and each packet's JSON carrying its events (optionally edited by `edit_event`)."""
    rows = bundle_rows(bundle, "incident_events")
    files = {}
    for key in ("INC-2", "INC-3", "INC-5"):
        path = f"incidents/{key}/{key}.json"
        packet = json.loads(read(bundle, path))
        reference = packet.pop("event_log")
        events = [{name: row[name] for name in bundle_checker.PACKET_EVENT_FIELDS} for row in rows
                  if row["stream"] == reference["stream"]]
        for event in events:
            (edit_event or (lambda e: None))(event)
        integrity = packet.pop("integrity")
        files[path] = (json.dumps({**packet, "events": events, "integrity": integrity}, indent=2) + "\n").encode()

    def older(document):
        del document["layout"]
    return forge(bundle, target, files=files, manifest=older)


def test_a_bundle_of_the_layout_before_is_still_checked_by_its_rules(bundle, tmp_path):
    """A bundle written before layout 2 (no `layout` in its manifest) is checked as it was written:
    its packets' own events against the event log."""
    older = _as_layout_1(bundle, tmp_path / "old.zip")
    problems = verify_bundle(older).problems
    # Rewriting it changed the manifest after it was signed; nothing else is wrong with it.
    assert problems and all(p.startswith("manifest.sig: ") for p in problems), problems

    def edit(event):
        if event["seq"] == 5 and event["stream"] == "incident:2":
            event["data"]["text"] = "nothing to see"
    assert_broken(bundle, tmp_path, _as_layout_1(bundle, tmp_path / "old-edited.zip", edit),
                  "incidents/INC-2/INC-2.json: event incident:2 seq 5 differs from the event log")


def test_a_bundle_of_a_layout_this_checker_does_not_know_is_refused_by_name(bundle, tmp_path):
    def newer(document):
        document["layout"] = 3
    forged = forge(bundle, tmp_path / "f.zip", manifest=newer)
    code, output, plain_code, plain_output = both(bundle, tmp_path, forged)
    assert code == 1 and plain_code == 1
    for text in (output, plain_output):
        assert "manifest.json says layout 3; this checker reads layouts 1, 2" in text, text


def test_the_packets_of_the_last_stream_of_an_event_log_are_checked_too(bundle, tmp_path):
    """An incident's packets are checked as soon as its stream in the event log has been read; the last
    stream ends with the file. An entity that names no character is text that differs, not a crash."""
    last = bundle_rows(bundle, "incident_events")[-1]["stream"]
    key = f"INC-{last.split(':')[1]}"
    path = f"incidents/{key}/{key}.html"
    html = read(bundle, path).decode()
    first = re.search(r"<tr><td>1</td>(?:<td>[^<]*</td>){3}<td>(.*?)</td></tr>", html, re.DOTALL)
    html = html[:first.start(1)] + "declared nothing &#99999999999999999999;" + html[first.end(1):]
    forged = forge(bundle, tmp_path / "f.zip", files={path: html.encode()})
    assert_broken(bundle, tmp_path, forged, f"{path}: timeline: {last} seq 1: the text differs from the event log's "
                                            "summary column")


def test_a_packet_filed_under_the_other_population_is_caught(bundle, tmp_path):
    """A packet is checked with its incident's stream wherever it is filed."""
    packet = read(bundle, "incidents/INC-2/INC-2.json")
    misfiled = "incidents_carried_over/INC-2/INC-2.json"

    def list_it(document):
        document["files"].append({"path": misfiled, "sha256": hashlib.sha256(packet).hexdigest(), "bytes": len(packet),
                                  "rows": None, "section": "E3", "description": "packet", "query": "incident INC-2"})
        document["files"].sort(key=lambda entry: entry["path"])
    forged = forge(bundle, tmp_path / "f.zip", manifest=list_it, add={misfiled: packet})
    assert_broken(bundle, tmp_path, forged,
                  f"{misfiled}: event_log.file is 'incident_events.json'; the event log "
                  "incidents_carried_over_events.json has 'incidents_carried_over_events.json' for incident:2",
                  "incidents_carried_over/INC-2/: a packet for INC-2, which is not in incidents_carried_over.json")


def test_layout_1_an_incident_event_repeated_differently_in_the_audit_trail_is_caught(bundle, tmp_path):
    """Layout 1 repeated incident streams in the audit trail: each repeated row must be the event log's
    row exactly, down to the columns the hash does not cover."""
    older = _as_layout_1(bundle, tmp_path / "old.zip")
    rows = [row for row in bundle_rows(older, "incident_events") if row["stream"] == "incident:2"]
    rows[4] = {**rows[4], "actor_name": "Mallory Stone"}  # not hashed: the chain still holds
    merged = sorted(bundle_rows(older, "audit_log") + rows, key=lambda row: (row["stream"], row["seq"]))
    csv_text, segment = _csv_of(merged), _whole_stream_segment("incident:2", rows)

    def add_segment(document):
        document["event_log"]["segments"]["audit_log.json"].append(segment)
        document["event_log"]["segments"]["audit_log.json"].sort(key=lambda s: s["stream"])
        for entry in document["files"]:
            if entry["path"].startswith("audit_log."):
                entry["rows"] = len(merged)
    text = "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in merged) + "\n]\n"
    forged = forge(older, tmp_path / "f.zip", manifest=add_segment,
                   files={"audit_log.json": text.encode(), "audit_log.csv": csv_text.encode()})
    assert_broken(bundle, tmp_path, forged, f"audit_log.json: stream incident:2 seq {rows[4]['seq']}: differs from "
                                            "the same event in the incident event log")


def test_a_key_with_a_digit_that_is_no_number_is_not_an_incident_key(bundle, tmp_path):
    files = edited_table(bundle, "incidents", {"key": "INC-3"}, {"key": "INC-²"})
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged, "incidents.json: INC-² (row 2): key 'INC-²' is not an incident key")


def test_a_csv_cell_that_drops_its_formula_guard_is_caught(bundle, tmp_path):
    """A text cell is taken as it is only when it starts like no formula: one that does must carry the
    leading ' in the CSV."""
    data = read(bundle, "incidents.csv")
    assert b"'=HYPERLINK" in data
    forged = forge(bundle, tmp_path / "f.zip", files={"incidents.csv": data.replace(b"'=HYPERLINK", b"=HYPERLINK")})
    assert_broken(bundle, tmp_path, forged, "incidents.csv: row 1 (INC-2), column title: '=HYPERLINK(")


@pytest.mark.parametrize("ascii_only", [False, True], ids=["json-raw", "json-escaped"])
def test_a_csv_cell_showing_a_bidi_control_raw_is_caught_however_the_json_writes_it(db, tmp_path, ascii_only):
    """The CSV shows a bidi control as a marker ([U+202E]); the JSON twin may hold the control itself or
    its \\u202e escape, and either way a CSV cell with the raw control differs from it."""
    from datetime import date

    from vigil_ir.incidents import service
    from tests.test_bundle import step

    seed(db)
    step(db, date(2025, 3, 1), 5, "INC-5", lambda s, i: service.add_note(s, incident=i, actor="U0A", text="a\u202eb"))
    bundle = export(db, tmp_path)
    lines = read(bundle, "incident_events.json").decode().split("\n")
    number = next(n for n, line in enumerate((l for l in lines if l.startswith("{")), 1) if "a\u202eb" in line)
    lines = [json.dumps(json.loads(line.rstrip(",")), ensure_ascii=ascii_only) + ("," if line.endswith(",") else "")
             if "a\u202eb" in line else line for line in lines]
    assert ("\\u202e" in "\n".join(lines)) == ascii_only
    data = read(bundle, "incident_events.csv").decode()
    assert data.count("a[U+202E]b") == 2  # the summary and the data
    forged = forge(bundle, tmp_path / "f.zip", files={"incident_events.json": "\n".join(lines).encode(),
                                                      "incident_events.csv": data.replace("a[U+202E]b", "a\u202eb").encode()})
    assert_broken(bundle, tmp_path, forged, f"incident_events.csv: row {number} (incident:5), column summary: ",
                  f"incident_events.csv: row {number} (incident:5), column data: ")
