"""Signed bundles: the installation's Ed25519 key (created on first use, rotated, published to the audit
channel), `manifest.sig` in every bundle, and `vigil verify --bundle` checking the signature and whose key
made it (the installation's database, or --key), the export receipt and the chain of bundles."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import select

from tests.conftest import VigilHarness
from tests.signing_helpers import installation_key, signature_for
from tests.test_bundle import END, EXPORTED_AT, START, export, manifest_of, read, seed
from tests.test_bundle_verify import rewrite
from tests.test_dashboard import auditor, dash  # noqa: F401  (fixtures)
from vigil_ir import clock
from vigil_ir.cli import main
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.verify import verify_database
from vigil_ir.exports.bundle.export import export_bundle
from vigil_ir.exports.signature import fingerprint
from vigil_ir.people import Profile, record_profile
from vigil_ir.runtime import build_runtime
from vigil_ir.signing import keyfile

OFFLINE = {"DATABASE_URL": "postgresql://nowhere:1/x"}  # no installation database can be read
AUDIT = "C0AUDIT"


def verify(path: Path, *args, db=None):
    """`vigil verify --bundle`, with the installation's database (db) or with none reachable."""
    if db is not None:
        return CliRunner().invoke(main, ["verify", "--bundle", str(path), *args], obj={"database": db})
    return CliRunner().invoke(main, ["verify", "--bundle", str(path), *args], env=OFFLINE)


def cli(db, *args, env=None):
    return CliRunner().invoke(main, list(args), obj={"database": db}, env=env)


def signature_of(bundle: Path) -> dict:
    return json.loads(read(bundle, "manifest.sig"))


def events(db, kind: str) -> list[Event]:
    with db.session() as s:
        return list(s.exec(select(Event).where(Event.kind == kind).order_by(Event.id)))


def forged(bundle: Path, target: Path, key: Ed25519PrivateKey) -> Path:
    """The bundle re-signed with `key` instead of the installation's. Its files and manifest are left as
    they are (every claim in them still checks out), so only the key can tell the forgery apart."""
    return rewrite(bundle, target.with_name("forged-" + target.name),
                   change={"manifest.sig": lambda _: signature_for(read(bundle, "manifest.json"), key)})


@pytest.fixture
def bundle(db, tmp_path) -> Path:
    seed(db)
    return export(db, tmp_path)


# --- the signature in the bundle and what verify prints ------------------------------------------------------

def test_every_bundle_is_signed_with_the_installation_key_per_the_contract(bundle, signing_key_file):
    document = signature_of(bundle)
    assert set(document) == {"format", "algorithm", "signed_file", "public_key", "key_fingerprint", "signature"}
    assert (document["format"], document["algorithm"], document["signed_file"]) == \
        ("vigil-signature/1", "Ed25519", "manifest.json")
    public = base64.b64decode(document["public_key"])
    assert len(public) == 32 and len(base64.b64decode(document["signature"])) == 64
    assert document["key_fingerprint"] == "SHA256:" + hashlib.sha256(public).hexdigest()
    assert public == keyfile.public_bytes(keyfile.load(signing_key_file))
    assert stat.S_IMODE(os.stat(signing_key_file).st_mode) == 0o600
    assert signing_key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8 PEM


def test_a_valid_bundle_passes_and_prints_the_manifest_sha256_and_the_confirmed_key(db, bundle):
    result = verify(bundle, db=db)
    assert result.exit_code == 0, result.output
    manifest_sha = hashlib.sha256(read(bundle, "manifest.json")).hexdigest()
    key = signature_of(bundle)["key_fingerprint"]
    assert f"Manifest SHA-256: {manifest_sha}" in result.output
    assert f"Signature: valid Ed25519 signature of manifest.json by key {key}" in result.output
    assert f"Key: {key} is this installation's key (created 2024-12-01T09:00:00.000000Z by cli:setup" in result.output
    assert "never published to an audit channel" in result.output  # no VIGIL_AUDIT_CHANNEL here
    shown = cli(db, "signing-key", "show")
    assert shown.exit_code == 0 and shown.output.startswith(f"Signing key {key} (Ed25519), created ")


def test_offline_the_key_is_confirmed_by_hand_or_reported_unconfirmed(bundle):
    key = signature_of(bundle)["key_fingerprint"]
    confirmed = verify(bundle, "--key", key)
    assert confirmed.exit_code == 0, confirmed.output
    assert f"Key: {key} is the key given with --key" in confirmed.output
    plain = verify(bundle)
    assert plain.exit_code == 0, plain.output
    assert f"Key: UNCONFIRMED: the signature is valid for key {key}" in plain.output
    assert "could not be read" in plain.output and "audit channel" in plain.output and "--key SHA256:" in plain.output
    wrong = verify(bundle, "--key", "sha256:" + "0" * 64)
    assert wrong.exit_code == 2 and "--key" in wrong.output


def test_an_edited_manifest_with_file_hashes_recomputed_fails_the_signature(db, bundle, tmp_path):
    edited = b"INC-2,edited"

    def reseal(document):  # the careful forger: the file's hash and size updated in the manifest
        entry = next(e for e in document["files"] if e["path"] == "incidents.csv")
        entry["sha256"], entry["bytes"] = hashlib.sha256(edited).hexdigest(), len(edited)
        document["generated_by"] = "U0MALLORY"

    tampered = rewrite(bundle, tmp_path / "t.zip", change={"incidents.csv": lambda _: edited}, manifest=reseal,
                       resign=False)
    key = signature_of(bundle)["key_fingerprint"]
    for result in (verify(tampered, db=db), verify(tampered), verify(tampered, "--key", key)):
        assert result.exit_code == 1, result.output
        assert (f"BROKEN: manifest.sig: the signature by key {key} does not match manifest.json: the manifest was "
                "changed after it was signed") in result.output
        assert "OK:" not in result.output


def test_a_forged_bundle_signed_with_another_key_fails_with_the_database_and_with_key(db, bundle, tmp_path):
    other = Ed25519PrivateKey.generate()
    forgery = forged(bundle, tmp_path / "t.zip", other)
    theirs, ours = fingerprint(keyfile.public_bytes(other)), signature_of(bundle)["key_fingerprint"]
    assert signature_of(forgery)["key_fingerprint"] == theirs
    with_db = verify(forgery, db=db)
    assert with_db.exit_code == 1, with_db.output
    assert (f"BROKEN: manifest.sig: signed with key {theirs}, which this installation never recorded "
            f"(checked against the installation database at") in with_db.output
    assert f"its keys: {ours}): the bundle was not signed by it" in with_db.output
    by_hand = verify(forgery, "--key", ours)
    assert by_hand.exit_code == 1, by_hand.output
    assert f"BROKEN: manifest.sig: signed with key {theirs}, not the expected key {ours} (--key)" in by_hand.output
    # With neither, the signature itself is valid: the output says it is unconfirmed, and for which key.
    alone = verify(forgery)
    assert alone.exit_code == 0 and f"UNCONFIRMED: the signature is valid for key {theirs}" in alone.output, alone.output


@pytest.mark.parametrize("content,reason", [
    (None, "BROKEN: manifest.sig: missing: the bundle is not signed"),
    (b"not json", "BROKEN: manifest.sig: malformed: it is not JSON"),
    (b"[]", "BROKEN: manifest.sig: malformed: it is not a JSON object"),
    ({"format": "vigil-signature/2"}, "malformed: format is 'vigil-signature/2', expected 'vigil-signature/1'"),
    ({"algorithm": "RSA"}, "malformed: algorithm is 'RSA', expected 'Ed25519'"),
    ({"signed_file": "README.md"}, "malformed: signed_file is 'README.md', expected 'manifest.json'"),
    ({"signature": "not base64!"}, "malformed: signature is not base64"),
    ({"signature": base64.b64encode(b"x" * 63).decode()}, "malformed: signature decodes to 63 bytes"),
    ({"public_key": base64.b64encode(b"x" * 31).decode()}, "malformed: public_key decodes to 31 bytes"),
    ({"key_fingerprint": "SHA256:" + "0" * 64}, "is not the fingerprint of public_key"),
    ({"extra": 1}, "malformed: unexpected field(s) extra"),
])
def test_a_missing_or_malformed_signature_fails_with_a_clear_reason(bundle, tmp_path, content, reason):
    if content is None:
        tampered = rewrite(bundle, tmp_path / "t.zip", drop={"manifest.sig"})
    elif isinstance(content, dict):
        tampered = rewrite(bundle, tmp_path / "t.zip",
                           change={"manifest.sig": lambda data: json.dumps({**json.loads(data), **content}).encode()})
    else:
        tampered = rewrite(bundle, tmp_path / "t.zip", change={"manifest.sig": lambda _: content})
    result = verify(tampered)
    assert result.exit_code == 1, result.output
    assert reason in result.output
    assert "1 problem(s)" in result.output.splitlines()[-1]


# --- rotation ------------------------------------------------------------------------------------------------

def test_rotation_keeps_old_bundles_verifying_and_refuses_the_retired_key_for_new_ones(db, bundle, tmp_path,
                                                                                       signing_key_file):
    old_key, old = installation_key(), signature_of(bundle)["key_fingerprint"]
    with db.session() as s:
        record_profile(s, user_id="U0SECURITY", profile=Profile(real_name="Sam Lee", email="sam@example.com"))
    refused = cli(db, "signing-key", "rotate", "--by", "Sam Lee")  # a name typed by hand names nobody
    assert refused.exit_code == 2 and "is not a person in Vigil's directory" in refused.output
    assert keyfile.load(signing_key_file) is not None and not events(db, "audit.signing_key_rotated")
    with clock.frozen(datetime(2025, 4, 20, tzinfo=timezone.utc)):
        rotated = cli(db, "signing-key", "rotate", "--reason", "yearly rotation", "--by", "sam@example.com")
    assert rotated.exit_code == 0, rotated.output
    new = fingerprint(keyfile.public_bytes(keyfile.load(signing_key_file)))
    assert new != old and f"Rotated: {new} replaces {old}; recorded as audit.signing_key_rotated" in rotated.output
    assert stat.S_IMODE(os.stat(signing_key_file).st_mode) == 0o600
    assert [p.name for p in signing_key_file.parent.iterdir()] == [signing_key_file.name]  # no copy left behind
    (event,) = events(db, "audit.signing_key_rotated")
    assert event.actor == "U0SECURITY" and event.data["previous_fingerprint"] == old
    assert event.data["fingerprint"] == new and event.data["reason"] == "yearly rotation"
    assert fingerprint(base64.b64decode(event.data["public_key"])) == new

    before = verify(bundle, db=db)  # signed before the rotation: still this installation's, for its time
    assert before.exit_code == 0, before.output
    assert f"Key: {old} is this installation's key (created" in before.output and "retired 2025-04-20" in before.output
    with clock.frozen(datetime(2025, 5, 1, tzinfo=timezone.utc)):
        after = export_bundle(db, start=START, end=END, output=tmp_path / "after.zip", actor="cli:auditor")
    assert after.key_fingerprint == new == signature_of(tmp_path / "after.zip")["key_fingerprint"]
    assert verify(tmp_path / "after.zip", db=db).exit_code == 0

    # A thief of the old key file signs a new manifest with it: the key was retired by then.
    def later(document):
        document["generated_at"] = "2025-05-02T00:00:00.000000Z"

    tampered = rewrite(tmp_path / "after.zip", tmp_path / "t.zip", manifest=later, resign=False)
    stolen = rewrite(tampered, tmp_path / "stolen.zip",
                     change={"manifest.sig": lambda _: signature_for(read(tampered, "manifest.json"), old_key)})
    result = verify(stolen, db=db)
    assert result.exit_code == 1, result.output
    assert f"BROKEN: manifest.sig: signed with key {old}, which was not the installation's key when the manifest " \
           "says the bundle was generated (2025-05-02T00:00:00.000000Z" in result.output
    shown = cli(db, "signing-key", "show")
    assert shown.output.startswith(f"Signing key {new} (Ed25519), rotated in 2025-04-20")
    assert f"Earlier keys (bundles they signed still verify):\n  {old}: created" in shown.output
    with db.session() as s:
        assert verify_database(s).ok


def test_a_missing_or_replaced_key_file_is_refused_until_restored_or_rotated(db, bundle, tmp_path, signing_key_file):
    original = signing_key_file.read_bytes()
    signing_key_file.unlink()
    missing = cli(db, "export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "m.zip"))
    assert missing.exit_code == 1 and "is missing, but this installation signs with SHA256:" in missing.output
    assert "Restore the key file from its backup, or start a new key with `vigil signing-key rotate`" in missing.output
    assert not (tmp_path / "m.zip").exists() and not signing_key_file.exists()
    keyfile.create(signing_key_file)  # someone puts another key in its place
    swapped = cli(db, "export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "m.zip"))
    assert swapped.exit_code == 1 and "which this installation never recorded; the current signing key is" \
        in swapped.output
    signing_key_file.unlink()
    fd = os.open(signing_key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, original)
    os.close(fd)
    restored = cli(db, "export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "m.zip"))
    assert restored.exit_code == 0, restored.output
    assert len(events(db, "audit.bundle_exported")) == 2 and len(events(db, "audit.signing_key_created")) == 1


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_key_file_others_can_read_or_write_is_refused(db, tmp_path, signing_key_file, mode):
    seed(db)  # creates the key
    os.chmod(signing_key_file, mode)
    result = cli(db, "export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "e.zip"))
    assert result.exit_code == 1, result.output
    assert f"can be read or written by others (mode {mode:04o})" in result.output
    assert f"chmod 600 {signing_key_file}" in result.output
    assert not (tmp_path / "e.zip").exists() and not events(db, "audit.bundle_exported")
    shown = cli(db, "signing-key", "show")
    assert shown.exit_code == 1 and f"(mode {mode:04o})" in shown.output


def test_a_key_file_mounted_as_a_secret_through_a_symbolic_link_is_used(db, bundle, tmp_path, signing_key_file):
    secret = tmp_path / "secrets" / "..data"
    secret.mkdir(parents=True)
    os.replace(signing_key_file, secret / "vigil-signing-key.pem")
    signing_key_file.symlink_to(secret / "vigil-signing-key.pem")  # how a Kubernetes secret volume mounts a key
    result = cli(db, "export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "s.zip"))
    assert result.exit_code == 0, result.output
    assert signature_of(tmp_path / "s.zip")["key_fingerprint"] == signature_of(bundle)["key_fingerprint"]
    os.chmod(secret / "vigil-signing-key.pem", 0o644)  # the target's mode is the one that counts
    refused = cli(db, "signing-key", "show")
    assert refused.exit_code == 1 and "(mode 0644)" in refused.output


def test_an_unreadable_or_foreign_key_file_is_refused_with_the_reason(db, tmp_path, signing_key_file):
    fd = os.open(signing_key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    result = cli(db, "signing-key", "show")
    assert result.exit_code == 1 and "does not hold an unencrypted PKCS8 PEM private key" in result.output
    assert not events(db, "audit.signing_key_created")


# --- the receipt and the chain of bundles ----------------------------------------------------------------------

def test_the_receipt_records_the_manifest_and_key_and_the_next_bundle_names_the_previous(db, bundle, tmp_path):
    first = manifest_of(bundle)
    assert first["previous_bundle"] is None
    (receipt,) = events(db, "audit.bundle_exported")
    first_sha = hashlib.sha256(read(bundle, "manifest.json")).hexdigest()
    assert receipt.data["manifest_sha256"] == first_sha and receipt.data["previous_manifest_sha256"] is None
    assert receipt.data["key_fingerprint"] == signature_of(bundle)["key_fingerprint"]

    second = export(db, tmp_path, name="second.zip")
    previous = manifest_of(second)["previous_bundle"]
    assert previous["manifest_sha256"] == first_sha
    assert previous["key_fingerprint"] == receipt.data["key_fingerprint"] and previous["file"] == "evidence.zip"
    assert previous["receipt"] == {"stream": "audit", "seq": receipt.stream_seq,
                                   "recorded_at": clock.iso(receipt.recorded_at), "hash": receipt.hash}
    (_, again) = events(db, "audit.bundle_exported")
    assert again.data["previous_manifest_sha256"] == first_sha
    assert again.data["manifest_sha256"] == hashlib.sha256(read(second, "manifest.json")).hexdigest()
    assert verify(second, db=db).exit_code == 0


Q2_END = datetime(2025, 7, 1, tzinfo=timezone.utc)


def quarter_two(db, tmp_path, name="q2.zip", at=Q2_END + timedelta(days=3)) -> Path:
    """Q2's bundle, exported after Q2: its audit log holds the receipt of Q1's export (10 April)."""
    with clock.frozen(at):
        export_bundle(db, start=END, end=Q2_END, output=tmp_path / name, actor="cli:auditor")
    return tmp_path / name


def plain_verify(bundle: Path, tmp_path: Path, *args: str):
    """The bundle's own verify.py on a plain interpreter, from an empty folder."""
    empty = tmp_path / "plain"
    empty.mkdir(exist_ok=True)
    (empty / "verify.py").write_bytes(read(bundle, "verify.py"))
    return subprocess.run([sys.executable, "-I", "-S", "verify.py", str(bundle), *args], cwd=empty,
                          capture_output=True, text=True)


def test_the_next_quarter_names_the_last_export_as_its_receipt_in_the_log_says(db, bundle, tmp_path):
    q2 = quarter_two(db, tmp_path)
    previous = manifest_of(q2)["previous_bundle"]
    assert previous["manifest_sha256"] == hashlib.sha256(read(bundle, "manifest.json")).hexdigest()
    assert previous["generated_by"] == "cli:auditor"
    checked = verify(q2, "--previous", str(bundle), db=db)
    assert checked.exit_code == 0, checked.output
    assert f"Previous bundle: {bundle} is the bundle this one names" in checked.output
    assert "NOTE" not in checked.output  # the receipt is in Q2's own log: checked, not just noted
    plain = plain_verify(q2, tmp_path, "--previous", str(bundle))
    assert plain.returncode == 0 and "OK:" in plain.stdout, plain.stderr


@pytest.mark.parametrize("edit, reason", [
    (lambda p: p.update(manifest_sha256="0" * 64), "manifest_sha256 is '" + "0" * 64 + "'; its receipt in the event log says"),
    (lambda p: p.update(generated_by="U0SOMEONE"), "generated_by 'U0SOMEONE'; its receipt was recorded by 'cli:auditor'"),
    (lambda p: p["receipt"].update(hash="f" * 64), "receipt hash " + "f" * 64 + "; the event log has"),
])
def test_a_previous_bundle_claim_that_its_receipt_contradicts_fails(db, bundle, tmp_path, edit, reason):
    q2 = quarter_two(db, tmp_path)
    edited = rewrite(q2, tmp_path / "edited.zip", manifest=lambda m: edit(m["previous_bundle"]))
    result = verify(edited, db=db)
    assert result.exit_code == 1 and reason in result.output, result.output
    plain = plain_verify(edited, tmp_path)
    assert plain.returncode == 1 and reason in plain.stderr


def test_an_emptied_previous_bundle_or_a_skipped_export_fails(db, bundle, tmp_path):
    with clock.frozen(EXPORTED_AT + timedelta(days=1)):  # Q1 exported again, a day later
        export_bundle(db, start=START, end=END, output=tmp_path / "again.zip", actor="cli:auditor")
    q2 = quarter_two(db, tmp_path)
    assert manifest_of(q2)["previous_bundle"]["manifest_sha256"] == \
        hashlib.sha256(read(tmp_path / "again.zip", "manifest.json")).hexdigest()
    emptied = verify(rewrite(q2, tmp_path / "emptied.zip", manifest=lambda m: m.update(previous_bundle=None)), db=db)
    assert emptied.exit_code == 1
    assert "previous_bundle: empty, but the audit log records an earlier export (again.zip" in emptied.output
    older = manifest_of(tmp_path / "again.zip")["previous_bundle"]  # names the first export, the day before
    assert older["file"] == "evidence.zip"
    skipped = verify(rewrite(q2, tmp_path / "skipped.zip", manifest=lambda m: m.update(previous_bundle=older)), db=db)
    assert skipped.exit_code == 1 and "a later one was recorded before this bundle was generated (again.zip" \
        in skipped.output


def test_previous_must_be_the_bundle_named(db, bundle, tmp_path):
    q2 = quarter_two(db, tmp_path)
    other = export(db, tmp_path, name="other.zip")  # the same quarter exported again: another manifest
    wrong = verify(q2, "--previous", str(other), db=db)
    assert wrong.exit_code == 1
    assert f"previous_bundle: manifest_sha256 is '{manifest_of(q2)['previous_bundle']['manifest_sha256']}'; " \
        f"{other} has" in wrong.output
    assert verify(q2, "--previous", str(tmp_path / "missing.zip"), db=db).exit_code == 1
    assert CliRunner().invoke(main, ["verify", "--previous", str(bundle)], obj={"database": db}).exit_code == 2
    same_quarter = export(db, tmp_path, name="same.zip")  # names other.zip, whose receipt is after the period
    plain = verify(same_quarter, db=db)
    assert plain.exit_code == 0 and "NOTE: manifest.json: previous_bundle: its receipt" in plain.output
    given = verify(same_quarter, "--previous", str(other), db=db)
    assert given.exit_code == 0 and "NOTE" not in given.output  # checked against the file: nothing to note
    first = manifest_of(bundle)
    assert first["previous_bundle"] is None
    alone = verify(bundle, "--previous", str(other), db=db)
    assert alone.exit_code == 1 and "previous_bundle: empty, but" in alone.output


# --- publication in the audit channel ---------------------------------------------------------------------------

@pytest.fixture
def audited(db, fake_slack, settings_for):
    harness = VigilHarness(build_runtime(settings_for(DATABASE_URL=db.url, VIGIL_AUDIT_CHANNEL=AUDIT), db), fake_slack)
    yield harness
    harness.client.close()


def test_a_new_key_is_published_to_the_audit_channel_and_verify_says_where(audited, fake_slack, tmp_path):
    db, settings = audited.db, audited.runtime.settings
    today = clock.now().date()
    start = datetime.combine(today - timedelta(days=1), datetime.min.time(), timezone.utc)
    end = start + timedelta(days=3)
    export_bundle(db, start=start, end=end, output=tmp_path / "first.zip", actor="cli:auditor", settings=settings)
    (created,) = events(db, "audit.signing_key_created")
    key = created.data["fingerprint"]
    audited.deliver()
    (post,) = [c for c in fake_slack.ok_calls("chat.postMessage") if c.params["channel"] == AUDIT]
    assert key in post.params["text"] and f"signing-key v1 fingerprint={key} public_key=" in post.params["text"]
    audited.deliver()  # a second pass posts nothing more
    assert len([c for c in fake_slack.ok_calls("chat.postMessage") if c.params["channel"] == AUDIT]) == 1
    (published,) = events(db, "audit.signing_key_published")
    assert published.data["fingerprint"] == key and published.data["channel"] == AUDIT
    assert published.data["permalink"].startswith("https://fake.slack.com/archives/C0AUDIT/")

    second = tmp_path / "second.zip"
    export_bundle(db, start=start, end=end, output=second, actor="cli:auditor", settings=settings)
    with_db = verify(second, db=db)
    assert with_db.exit_code == 0, with_db.output
    assert f"Key witnessed: posted to {AUDIT} {clock.iso(published.recorded_at)}: {published.data['permalink']}" \
        in with_db.output
    offline = verify(second)  # the bundle's own event log names the post, to compare by hand
    assert offline.exit_code == 0, offline.output
    assert f"Key publication named in the bundle's event log (open it and compare the fingerprint): " \
           f"{clock.iso(published.recorded_at)}: {published.data['permalink']}" in offline.output
    shown = CliRunner().invoke(main, ["signing-key", "show"], obj={"database": db}, env={"VIGIL_AUDIT_CHANNEL": AUDIT})
    assert f"published {clock.iso(published.recorded_at)} in {AUDIT}: {published.data['permalink']}" in shown.output


# --- the dashboard's bundle download ------------------------------------------------------------------------------

def test_a_dashboard_download_is_signed_and_refused_while_the_key_is_unusable(auditor, signing_key_file, tmp_path):
    path = "/exports/bundle.zip?from=2025-01-01&to=2025-12-31"
    response = auditor.client.get(path)
    assert response.status_code == 200, response.text
    (tmp_path / "download.zip").write_bytes(response.content)
    result = verify(tmp_path / "download.zip", db=auditor.db)
    assert result.exit_code == 0 and "is this installation's key (created" in result.output, result.output
    os.chmod(signing_key_file, 0o644)
    refused = auditor.client.get(path)
    assert refused.status_code == 503 and "The bundle cannot be signed" in refused.text
    assert str(signing_key_file) not in refused.text  # the operator's detail stays in the log
    assert len(auditor.events("audit.bundle_exported")) == 1
