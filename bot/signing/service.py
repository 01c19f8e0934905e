"""The installation's signing key: created on first use, rotated on demand, every key recorded as an event.

The private key lives in a file (vigil_ir.signing.keyfile); the database keeps only public keys, as
`audit.signing_key_created` and `audit.signing_key_rotated` events on the `audit` stream, so a
bundle signed before a rotation still verifies and a bundle signed with a key never recorded here
is recognised as foreign. Each new key is published to VIGIL_AUDIT_CHANNEL through the outbox; the
post's permalink is recorded as `audit.signing_key_published` (vigil_ir.slack.signing_key_post), so
an auditor can compare the fingerprint with something the database cannot rewrite.

The key in the file must be the last one recorded: a file that is missing, or that holds a key the
log does not name as current, is refused (someone replaced or lost it) until it is restored from a
backup or a new key is started with `vigil signing-key rotate`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.eventlog import Event, append
from vigil_ir.exports.signature import ALGORITHM, SignatureFile, fingerprint
from vigil_ir.idempotency import first_time
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import enqueue
from vigil_ir.signing import keyfile
from vigil_ir.signing.keyfile import KeyFileError

STREAM = "audit"
CREATED, ROTATED, PUBLISHED = "audit.signing_key_created", "audit.signing_key_rotated", "audit.signing_key_published"
PUBLISH_KIND = "audit.signing_key"  # outbox kind: post a key's fingerprint to the audit channel
REASON_MAX = 500


class SigningKeyError(Exception):
    """The signing key cannot be used; the message says why and what to do."""


@dataclass
class Publication:
    at: datetime
    channel: str | None
    permalink: str | None


@dataclass
class RecordedKey:
    """A public key the log names, and when it was the installation's signing key."""

    fingerprint: str
    public_key: str  # base64 of the 32 raw bytes
    since: datetime
    kind: str
    seq: int
    actor: str
    until: datetime | None = None  # when the next key replaced it
    published: list[Publication] = field(default_factory=list)

    def describe(self) -> str:
        how = "created" if self.kind == CREATED else "rotated in"
        span = f"{how} {clock.iso(self.since)} by {self.actor} (audit seq {self.seq})"
        return span + (f", retired {clock.iso(self.until)}" if self.until else ", current")


def recorded_keys(session: Session) -> list[RecordedKey]:
    """Every key the log names, oldest first, with its publications."""
    events = session.exec(select(Event).where(Event.stream == STREAM, Event.kind.in_((CREATED, ROTATED, PUBLISHED)))
                          .order_by(Event.stream_seq))
    keys: dict[str, RecordedKey] = {}
    order: list[RecordedKey] = []
    for event in events:
        data = event.data or {}
        name = data.get("fingerprint")
        if event.kind == PUBLISHED:
            if name in keys:
                keys[name].published.append(Publication(clock.to_utc(event.recorded_at), data.get("channel"),
                                                        data.get("permalink")))
            continue
        if name in keys:  # recorded twice: the first time counts
            continue
        key = RecordedKey(fingerprint=name, public_key=data.get("public_key"), since=clock.to_utc(event.recorded_at),
                          kind=event.kind, seq=event.stream_seq, actor=event.actor)
        if order:
            order[-1].until = key.since
        keys[name] = key
        order.append(key)
    return order


@dataclass(frozen=True)
class Signer:
    key: Ed25519PrivateKey
    path: Path

    @property
    def public_key(self) -> bytes:
        return keyfile.public_bytes(self.key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, data: bytes) -> SignatureFile:
        return SignatureFile(public_key=self.public_key, signature=self.key.sign(data))


def key_path(settings: Settings) -> Path:
    return Path(settings.signing_key_file).expanduser()


def _record(session: Session, settings: Settings, signer: Signer, *, kind: str, actor: str, **extra) -> Event | None:
    """Record a new key and queue its publication, once per key (a second process finds it recorded)."""
    if not first_time(session, f"signing-key-recorded:{signer.fingerprint}"):
        return None
    event = append(session, stream=STREAM, kind=kind, actor=actor, data={
        "fingerprint": signer.fingerprint, "public_key": base64.b64encode(signer.public_key).decode("ascii"),
        "algorithm": ALGORITHM, "key_file": str(signer.path), **extra})
    queue_publication(session, settings, signer)
    return event


def queue_publication(session: Session, settings: Settings, signer: Signer) -> None:
    """Queue the fingerprint's post to the audit channel, once per key (and later, if the channel was set later)."""
    if not settings.audit_channel:
        return
    key = f"signing-key:{signer.fingerprint}"
    enqueue(session, kind=PUBLISH_KIND, subject=STREAM, dedupe_key=key, payload={
        "channel": settings.audit_channel, "key": key, "fingerprint": signer.fingerprint,
        "public_key": base64.b64encode(signer.public_key).decode("ascii")})


def _refusal(path: Path, found: str, current: RecordedKey, known: dict[str, RecordedKey]) -> SigningKeyError:
    if found in known:
        what = f"holds the retired key {found} ({known[found].describe()})"
    else:
        what = f"holds the key {found}, which this installation never recorded"
    return SigningKeyError(f"VIGIL_SIGNING_KEY_FILE={path} {what}; the current signing key is {current.fingerprint} "
                           f"({current.describe()}). Restore the key file from its backup, or start a new key with "
                           "`vigil signing-key rotate` (bundles signed earlier still verify).")


def signer(database: Database, settings: Settings, *, actor: str) -> Signer:
    """The installation's signing key, created and recorded on first use; SigningKeyError when it cannot be used."""
    path = key_path(settings)
    try:
        with database.session() as session:
            keys = recorded_keys(session)
            key = keyfile.load(path)
            if key is None:
                if keys:
                    raise SigningKeyError(
                        f"VIGIL_SIGNING_KEY_FILE={path} is missing, but this installation signs with "
                        f"{keys[-1].fingerprint} ({keys[-1].describe()}). Restore the key file from its backup, "
                        "or start a new key with `vigil signing-key rotate` (bundles signed earlier still verify).")
                key = keyfile.create(path)
            found = Signer(key, path)
            if not keys:
                _record(session, settings, found, kind=CREATED, actor=actor)
            elif found.fingerprint != keys[-1].fingerprint:
                raise _refusal(path, found.fingerprint, keys[-1], {k.fingerprint: k for k in keys})
            else:
                queue_publication(session, settings, found)
            return found
    except KeyFileError as exc:
        raise SigningKeyError(str(exc)) from None


@dataclass
class Rotation:
    previous: RecordedKey | None
    signer: Signer
    event: Event


def rotate(database: Database, settings: Settings, *, actor: str, reason: str | None = None) -> Rotation:
    """Start a new key: recorded (with the previous key's fingerprint), queued for the audit channel, then
    moved over the key file while the audit stream is still locked, so the file follows the log's order."""
    reason = (reason or "").strip() or None
    if reason and len(reason) > REASON_MAX:
        raise SigningKeyError(f"the reason is {len(reason)} characters; at most {REASON_MAX}")
    path = key_path(settings)
    try:
        replacement = keyfile.Replacement(path)
    except KeyFileError as exc:
        raise SigningKeyError(str(exc)) from None
    try:
        with database.session() as session:
            keys = recorded_keys(session)
            previous = keys[-1] if keys else None
            new = Signer(replacement.key, path)
            extra = {"previous_fingerprint": previous.fingerprint if previous else None, "reason": reason}
            event = _record(session, settings, new, kind=ROTATED if previous else CREATED, actor=actor, **extra)
            replacement.commit()
        return Rotation(previous=previous, signer=new, event=event)
    finally:
        replacement.discard()


def pending_publication(session: Session, key_fingerprint: str) -> OutboxItem | None:
    """The queued audit-channel post of a key, while it is not yet delivered."""
    item = session.exec(select(OutboxItem).where(OutboxItem.dedupe_key == f"signing-key:{key_fingerprint}")).first()
    return item if item is not None and item.status != "done" else None
