"""`vigil verify --bundle`: offline checks of every file and of the chain segments inside the bundle."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from vigil_ir.cli import main
from vigil_ir.eventlog.canonical import event_hash
from vigil_ir.exports.bundle.verification import verify_bundle
from vigil_ir.exports.eventlog_export import hashed_fields
from tests.signing_helpers import signature_for
from tests.test_bundle import export, manifest_of, read, seed


def rewrite(source: Path, target: Path, *, change=None, drop=(), add=None, manifest=None, resign=True) -> Path:
    """Copy a zip, changing members (name -> function of bytes), dropping or adding some, or editing the manifest.

    An edited manifest is signed again with the installation's key (`resign`), as by someone who stole the key
    file: the other checks must catch the edit on their own. `resign=False` leaves the old signature."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        edited_manifest = None
        for info in old.infolist():
            if info.filename in drop:
                continue
            data = old.read(info.filename)
            if change and info.filename in change:
                data = change[info.filename](data)
            if manifest and info.filename == "manifest.json":
                document = json.loads(data)
                manifest(document)
                data = edited_manifest = json.dumps(document, indent=2).encode()
            if resign and edited_manifest is not None and info.filename == "manifest.sig":
                data = signature_for(edited_manifest)
            new.writestr(info, data)
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return target


def flip_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]


def verify_cli(path: Path):
    # No database is configured or passed: --bundle must not need one.
    return CliRunner().invoke(main, ["verify", "--bundle", str(path)], env={"DATABASE_URL": "postgresql://nowhere:1/x"})


@pytest.fixture
def bundle(db, tmp_path) -> Path:
    seed(db)
    return export(db, tmp_path)


def test_a_fresh_bundle_verifies_offline_with_one_ok_line(bundle):
    result = verify_cli(bundle)
    assert result.exit_code == 0, result.output
    line, *signature_lines = result.stdout.strip().splitlines()
    assert signature_lines[0] == f"Manifest SHA-256: {hashlib.sha256(read(bundle, 'manifest.json')).hexdigest()}"
    assert any(s.startswith("Key: UNCONFIRMED: the signature is valid for key SHA256:") for s in signature_lines)
    manifest = manifest_of(bundle)
    assert line.startswith(f"OK: {bundle}: {len(manifest['files'])} files match the manifest; ")
    segments = sum(len(s) for s in manifest["event_log"]["segments"].values())
    assert f"{segments} chain segments" in line and manifest["event_log"]["heads"]["digest"] in line


def test_a_changed_byte_in_any_file_fails_naming_the_file(bundle, tmp_path):
    for entry in manifest_of(bundle)["files"]:
        tampered = rewrite(bundle, tmp_path / "t.zip", change={entry["path"]: flip_byte})
        check = verify_bundle(tampered)
        assert not check.ok, entry["path"]
        assert any(p.startswith(f"{entry['path']}: SHA-256 differs from the manifest") for p in check.problems), \
            (entry["path"], check.problems)


def test_the_cli_names_the_changed_file_and_exits_1(bundle, tmp_path):
    tampered = rewrite(bundle, tmp_path / "t.zip", change={"incidents.csv": lambda d: d.replace(b"sev2", b"sev4")})
    result = verify_cli(tampered)
    assert result.exit_code == 1
    assert "BROKEN: incidents.csv: SHA-256 differs from the manifest" in result.output
    # the CSV no longer matches its JSON twin either, cell by cell
    assert "BROKEN: incidents.csv: row 1 (INC-2), column severity_initial: 'sev4' differs from its JSON twin" in result.output
    assert "problem(s)" in result.output.splitlines()[-1]


def test_removed_and_added_files_are_reported(bundle, tmp_path):
    tampered = rewrite(bundle, tmp_path / "t.zip", drop={"pirs.csv"}, add={"incidents/INC-9/INC-9.md": b"# made up"})
    problems = verify_bundle(tampered).problems
    assert "pirs.csv: listed in the manifest but missing from the bundle" in problems
    assert "incidents/INC-9/INC-9.md: in the bundle but not listed in the manifest" in problems
    assert len(problems) == 2


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_a_duplicated_member_is_reported(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        original = archive.read("README.md")
    tampered = rewrite(bundle, tmp_path / "t.zip", add={"README.md": original})
    assert "README.md: appears 2 times in the zip" in verify_bundle(tampered).problems


def _edit_event(data: bytes, stream: str, seq: int, edit) -> bytes:
    lines = data.decode().split("\n")
    for index, line in enumerate(lines):
        if line.startswith("{") and f'"stream": "{stream}", "seq": {seq},' in line:
            comma = line.endswith(",")
            row = json.loads(line.rstrip(","))
            edit(row)
            lines[index] = json.dumps(row, ensure_ascii=False) + ("," if comma else "")
    return "\n".join(lines).encode()


def _reseal(document: dict, bundle_path: Path, name: str, data: bytes) -> None:
    """What a careful forger does: update the file's hash and size in the manifest too."""
    for entry in document["files"]:
        if entry["path"] == name:
            entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)


def test_an_edited_event_row_fails_the_chain_naming_stream_and_seq(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        original = archive.read("incident_events.json")
    edited = _edit_event(original, "incident:2", 3, lambda row: row.update(actor="U0MALLORY"))
    tampered = rewrite(bundle, tmp_path / "t.zip", change={"incident_events.json": lambda _: edited},
                       manifest=lambda m: _reseal(m, bundle, "incident_events.json", edited))
    problems = verify_bundle(tampered).problems
    assert problems[0].startswith("incident_events.json: stream incident:2 seq 3: hash mismatch"), problems
    # the CSV twin still holds the original event, and says so
    assert any(p.startswith("incident_events.csv: row 3 (incident:2), column actor: 'U0LEAD' differs from its JSON twin")
               for p in problems), problems
    result = verify_cli(tampered)
    assert result.exit_code == 1 and "incident_events.json: stream incident:2 seq 3: hash mismatch (expected" in result.output


def test_a_rehashed_chain_still_fails_against_the_manifest_heads(bundle, tmp_path):
    """Recomputing every later hash hides the edit inside the file, not from the manifest's segment heads."""
    with zipfile.ZipFile(bundle) as archive:
        original = archive.read("incident_events.json")
    rows = [json.loads(line.rstrip(",")) for line in original.decode().splitlines() if line.startswith("{")]
    previous = None
    for row in rows:
        if row["stream"] != "incident:3":
            continue
        if previous is None:
            row["data"]["title"] = "Something else"
        else:
            row["prev_hash"] = previous
        row["hash"] = previous = event_hash(hashed_fields(row))
    forged = ("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n").encode()
    tampered = rewrite(bundle, tmp_path / "t.zip", change={"incident_events.json": lambda _: forged},
                       manifest=lambda m: _reseal(m, bundle, "incident_events.json", forged))
    problems = verify_bundle(tampered).problems
    assert any(p.startswith("incident_events.json: stream incident:3: ends at seq") for p in problems), problems

    def forge_manifest(document):  # ... and the manifest's segment too: the packet and the heads still disagree
        _reseal(document, bundle, "incident_events.json", forged)
        segment = next(s for s in document["event_log"]["segments"]["incident_events.json"]
                       if s["stream"] == "incident:3")
        segment["head_hash"] = previous

    tampered = rewrite(bundle, tmp_path / "t2.zip", change={"incident_events.json": lambda _: forged},
                       manifest=forge_manifest)
    problems = verify_bundle(tampered).problems
    assert any(p.startswith("incidents/INC-3/INC-3.json: integrity head") for p in problems), problems
    assert any(p.startswith("incident_events.json: stream incident:3 segment ends at seq 1") and
               "does not agree with the stream head" in p for p in problems), problems


def test_a_deleted_event_row_is_a_sequence_gap(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        original = archive.read("incident_events.json").decode()
    lines = [line for line in original.split("\n") if '"stream": "incident:2", "seq": 2,' not in line]
    assert len(lines) == len(original.split("\n")) - 1
    edited = "\n".join(lines).encode()
    tampered = rewrite(bundle, tmp_path / "t.zip", change={"incident_events.json": lambda _: edited},
                       manifest=lambda m: _reseal(m, bundle, "incident_events.json", edited))
    problems = verify_bundle(tampered).problems
    assert any("incident_events.json: stream incident:2 seq 3: sequence gap (expected seq 2)" in p for p in problems)


def test_edited_chain_heads_break_the_digest(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        original = archive.read("chain_heads.json")
    first = json.loads(original.decode().splitlines()[1].rstrip(","))
    edited = original.replace(first["hash"].encode(), b"0" * 64, 1)
    tampered = rewrite(bundle, tmp_path / "t.zip", change={"chain_heads.json": lambda _: edited},
                       manifest=lambda m: _reseal(m, bundle, "chain_heads.json", edited))
    problems = verify_bundle(tampered).problems
    assert any(p.startswith("chain_heads.json: digest of the chain_heads rows is sha256:") for p in problems), problems
    assert any(f"stream {first['stream']} segment ends at seq" in p for p in problems), problems


def test_a_changed_manifest_segment_is_caught(bundle, tmp_path):
    def shift(document):
        document["event_log"]["segments"]["audit_log.json"][0]["prev_hash"] = "f" * 64

    problems = verify_bundle(rewrite(bundle, tmp_path / "t.zip", manifest=shift)).problems
    stream = manifest_of(bundle)["event_log"]["segments"]["audit_log.json"][0]["stream"]
    assert any(p.startswith(f"audit_log.json: stream {stream} seq ") and "prev_hash differs from the manifest" in p
               for p in problems), problems


def test_a_changed_row_count_is_caught(bundle, tmp_path):
    def count(document):
        next(e for e in document["files"] if e["path"] == "incidents.csv")["rows"] = 2

    assert "incidents.csv: 3 rows; the manifest says 2" in verify_bundle(rewrite(bundle, tmp_path / "t.zip",
                                                                                manifest=count)).problems


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    (b"not a zip at all", "is not a zip file"),
    ("zip-without-manifest", "has no manifest.json: it is not a Vigil evidence bundle"),
    ("zip-with-bad-manifest", "manifest.json is not valid JSON"),
])
def test_unreadable_bundles_get_a_clear_message(tmp_path, content, message):
    path = tmp_path / "evidence.zip"
    if content == "zip-without-manifest":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("incidents.csv", "key\r\n")
    elif content == "zip-with-bad-manifest":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("manifest.json", "{not json")
    elif content is not None:
        path.write_bytes(content)
    result = verify_cli(path)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
