"""The signature part of `vigil verify --bundle`: is `manifest.sig` valid, and whose key signed it?

A valid signature only says the manifest is what the holder of key X signed. Whether X is this
installation's key comes from outside the bundle: the installation's database (every key it ever
used is recorded as an event, with when it was current and where its fingerprint was published),
or a fingerprint the auditor got elsewhere (`--key SHA256:…`, e.g. from the audit channel post). A
bundle's own event log can say where the key was published, but a forger could write that too, so
it is shown as a pointer to compare with, never as a confirmation.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil_ir import clock
from vigil_ir.exports import signature
from vigil_ir.exports.signature import SignatureFileError

AUDIT_LOG = "audit_log.json"  # E11: the bundle's audit-stream events, where key publications appear
PUBLISHED = "audit.signing_key_published"


@dataclass
class Signed:
    """What `manifest.sig` says about `manifest.json`."""

    manifest_sha256: str
    fingerprint: str | None = None  # the signing key, once the signature checked out
    claimed: str | None = None  # the key the file names, valid or not
    witnessed: list[str] = field(default_factory=list)  # publications found in the bundle's own event log

    @property
    def valid(self) -> bool:
        return self.fingerprint is not None


def check(archive: zipfile.ZipFile, problems: list[str], published: list[dict] | None = None) -> Signed:
    """Check `manifest.sig` against the exact bytes of `manifest.json`; problems are appended to `problems`.
    `published`: the audit log's `audit.signing_key_published` rows, when the caller has read them already
    (the bundle checker has); else they are looked up in the audit log."""
    import hashlib

    manifest = archive.read(signature.SIGNED_FILE)
    signed = Signed(manifest_sha256=hashlib.sha256(manifest).hexdigest())
    if signature.NAME not in archive.namelist():
        problems.append(f"{signature.NAME}: missing: the bundle is not signed (Vigil signs every bundle it exports), "
                        "so nothing shows who produced it")
        return signed
    try:
        parsed = signature.parse(archive.read(signature.NAME))
    except SignatureFileError as exc:
        problems.append(f"{signature.NAME}: malformed: {exc}")
        return signed
    signed.claimed = parsed.key_fingerprint
    try:
        Ed25519PublicKey.from_public_bytes(parsed.public_key).verify(parsed.signature, manifest)
    except InvalidSignature:
        problems.append(f"{signature.NAME}: the signature by key {parsed.key_fingerprint} does not match "
                        f"{signature.SIGNED_FILE}: the manifest was changed after it was signed, or the signature "
                        "belongs to another manifest")
        return signed
    except ValueError as exc:  # a public key that is not a valid point
        problems.append(f"{signature.NAME}: malformed: public_key is not a usable Ed25519 key ({exc})")
        return signed
    signed.fingerprint = parsed.key_fingerprint
    if published is not None:
        signed.witnessed = [publication for row in published if (publication := _publication(row, signed.fingerprint))]
    elif AUDIT_LOG in archive.namelist():
        signed.witnessed = _publications_in(archive, signed.fingerprint)
    return signed


def _publications_in(archive: zipfile.ZipFile, fingerprint: str) -> list[str]:
    """The key's `audit.signing_key_published` events in the bundle's audit log ("<time>: <permalink>")."""
    found = []
    with archive.open(AUDIT_LOG) as member:
        for raw in member:  # one event per line: only the few matching lines are parsed
            if PUBLISHED.encode() not in raw or fingerprint.encode() not in raw:
                continue
            try:
                row = json.loads(raw.decode("utf-8").strip().rstrip(",").lstrip("["))
            except ValueError:
                continue
            publication = _publication(row, fingerprint)
            if publication:
                found.append(publication)
    return found


def _publication(row, fingerprint: str) -> str | None:
    """The line "<time>: <permalink>" when the audit-log `row` publishes the key `fingerprint`."""
    if not isinstance(row, dict):
        return None
    data = row.get("data")
    try:
        data = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        return None
    if row.get("kind") == PUBLISHED and isinstance(data, dict) and data.get("fingerprint") == fingerprint:
        return f"{row.get('recorded_at')}: {data.get('permalink') or data.get('channel')}"
    return None


@dataclass
class Installation:
    """Whose keys to trust: the installation's recorded keys (None when no database was reachable) and/or a
    fingerprint given by hand."""

    keys: list | None = None  # vigil_ir.signing.service.RecordedKey, oldest first
    where: str = ""  # the database consulted, or why none was
    expected: str | None = None  # --key

    def confirm(self, signed: Signed, manifest: dict[str, Any], problems: list[str]) -> list[str]:
        """Lines describing the key, for a valid signature; a key that is not the installation's is a problem."""
        if not signed.valid:
            return []
        lines = [f"Signature: valid Ed25519 signature of manifest.json by key {signed.fingerprint}"]
        confirmed = False
        if self.keys is not None:
            confirmed = self._against_database(signed, manifest, problems, lines)
        if self.expected is not None:
            if self.expected != signed.fingerprint:
                problems.append(f"{signature.NAME}: signed with key {signed.fingerprint}, not the expected key "
                                f"{self.expected} (--key): this bundle was not signed with the key you trust")
            else:
                confirmed = True
                lines.append(f"Key: {signed.fingerprint} is the key given with --key")
        for witnessed in signed.witnessed:
            lines.append(f"Key publication named in the bundle's event log (open it and compare the fingerprint): "
                         f"{witnessed}")
        if not confirmed and self.keys is None and self.expected is None:
            lines.append(f"Key: UNCONFIRMED: the signature is valid for key {signed.fingerprint}, but nothing here "
                         f"says whose key that is ({self.where}; no --key given). Compare it with the fingerprint "
                         "posted in the installation's audit channel (VIGIL_AUDIT_CHANNEL, the post "
                         "\"signing-key v1 fingerprint=…\"), then run again with --key SHA256:….")
        return lines

    def _against_database(self, signed: Signed, manifest: dict[str, Any], problems: list[str],
                          lines: list[str]) -> bool:
        known = {key.fingerprint: key for key in self.keys}
        key = known.get(signed.fingerprint)
        if key is None:
            names = ", ".join(known) or "none"
            problems.append(f"{signature.NAME}: signed with key {signed.fingerprint}, which this installation never "
                            f"recorded ({self.where}; its keys: {names}): the bundle was not signed by it")
            return False
        generated = _time(manifest.get("generated_at"))
        if generated is not None and (generated < key.since or (key.until is not None and generated >= key.until)):
            problems.append(f"{signature.NAME}: signed with key {signed.fingerprint}, which was not the installation's "
                            f"key when the manifest says the bundle was generated ({clock.iso(generated)}; the key "
                            f"was {key.describe()})")
            return False
        lines.append(f"Key: {signed.fingerprint} is this installation's key ({key.describe()}; {self.where})")
        if key.published:
            for publication in key.published:
                lines.append(f"Key witnessed: posted to {publication.channel} {clock.iso(publication.at)}: "
                             f"{publication.permalink}")
        else:
            lines.append("Key witnessed: not yet: its fingerprint was never published to an audit channel "
                         "(VIGIL_AUDIT_CHANNEL unset, or the worker has not posted it yet)")
        return True


def _time(value: Any) -> datetime | None:
    try:
        return clock.to_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except (TypeError, ValueError):
        return None


def installation(database=None, url: str | None = None, expected: str | None = None) -> Installation:
    """The installation's recorded keys from `database` (a vigil_ir.db.Database) or `url`, read-only; an
    unreachable or absent database leaves `keys` None, with the reason in `where`."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlmodel import Session

    from vigil_ir.signing.service import recorded_keys

    result, where = Installation(expected=expected), "DATABASE_URL"
    try:
        if database is not None:
            where = make_url(database.url).render_as_string(hide_password=True)
            with database.read_session() as session:
                result.keys = recorded_keys(session)
        else:
            parsed = make_url(url)
            where = parsed.render_as_string(hide_password=True)
            if parsed.get_backend_name() == "sqlite":
                file = Path(parsed.database or "")
                if not parsed.database or not file.is_file():
                    result.where = f"no installation database at {where}"
                    return result
                # Read-only: never creates, migrates or locks the file.
                engine = create_engine(f"sqlite:///file:{file.resolve()}?mode=ro&uri=true")
            else:
                engine = create_engine(parsed, connect_args={"connect_timeout": 5})
            try:
                with Session(engine) as session:
                    result.keys = recorded_keys(session)
            finally:
                engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: no database to confirm the key with
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        result.keys = None
        result.where = f"the installation database at {where} could not be read ({type(exc).__name__}" + \
                       (f": {detail[0][:160]})" if detail else ")")
        return result
    result.where = f"checked against the installation database at {where}"
    return result
