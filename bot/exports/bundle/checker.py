"""Check a Vigil evidence bundle: every claim it makes, with nothing but Python's standard library.

Every bundle carries this file as `verify.py`; `vigil verify --bundle` runs the same code. Usage:

    python verify.py evidence.zip [--previous the-bundle-before.zip]

It prints `OK: …` and exits 0, or one `BROKEN: <file>: <record>: <reason>` line per problem (all of
them, not only the first) and exits 1. It imports nothing outside the standard library, so an
auditor can read it whole and run it on a machine without Vigil. What it checks, in order:

1. Signature: `manifest.sig` (Ed25519 over the exact bytes of manifest.json), verified here from
   RFC 8032 with integers and hashlib.sha512; a bundle without one is reported as unsigned.
2. Files: every file in the zip listed in the manifest and every listed file present, once; each
   file's SHA-256 and size as listed; each table's row count as listed.
3. Chains: every event row re-hashed (sha256(prev_hash + canonical JSON)); within each stream the
   seqs follow on and each prev_hash is the previous hash; each segment's ends as in the manifest;
   the heads digest recomputed from chain_heads; no stream given whole in an incident or exercise
   event log is repeated in the audit log (layout 1: an event in two event-log files is the same row).
4. CSV twins: every `<table>.csv` equal, cell by cell, to `<table>.json` rendered as the bundle
   renders CSV (None empty, true/false, JSON for structures, bidi controls shown as markers such
   as [U+202E], a leading ' before a formula start).
5. Claims of the manifest: each table's rows fall in the period as its selection rule says; the
   INC-/RISK-/ACT- sequences (count, first, last, gaps) agree with the rows; the notes agree with
   the files (an open period, a missing policy); the generator, time and person agree with the
   README, the packets and the event log.
6. Derived columns recomputed from the bundle's own event log: each incident's severities, status,
   security flag, roles, milestones, minutes to declare/acknowledge/mitigate/resolve, close
   override, event count and chain head; review lateness, status at period end and reminder counts.
7. Packets: each incident packet's JSON names exactly the incident's rows in the event log (layout
   2; a layout 1 packet holds its own copy of them), its milestones and head; its HTML names the
   same head and shows every event of the stream with its times and summary (layout 1: so does its
   Markdown; layout 2 has none). The manifest's `layout` says which rules apply.
8. Summaries: every event row's `summary` is the sentence its hashed data gives (section 9 below
   holds the sentence rules; Vigil writes every summary with them), with people named as
   `people.json` names them in the period.
9. The chain of bundles: `previous_bundle` says what its export receipt (`audit.bundle_exported`)
   says when that receipt is in this bundle's log, and names the last export recorded before this
   one; with --previous, the earlier bundle's manifest SHA-256, signing key, period and generation
   time are the ones named, and its signature holds.
10. Exercises: each row of the exercise register is an exercise declared in the period whose stream
    is in `exercise_events`; its kind, scenario, participants, playbooks, steps done/skipped/open,
    close findings, event count and head are recomputed from those events; the follow-up actions
    `action_items` attributes to it are the ones it lists.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = "vigil-evidence-bundle/1"
# The layouts this checker reads (manifest `layout`; none: 1). 1: every file carried its own copy of
# the events. 2: each event once: a packet's JSON names its rows in the event log instead of repeating
# them, the audit log leaves out streams given whole in an incident or exercise event log, and there
# is no Markdown packet.
LAYOUTS = (1, 2)
SIGNATURE_FORMAT = "vigil-signature/1"
GENESIS_HASH = "0" * 64
RECEIPT_KIND = "audit.bundle_exported"  # an export's receipt, which the next bundle names as previous_bundle
KEY_PUBLISHED = "audit.signing_key_published"  # where a signing key's fingerprint was posted
RECEIPT_FIELDS = ("manifest_sha256", "key_fingerprint", "file", "period_start", "period_end", "generated_at")
# Two exports running at once may each miss the other's receipt (it commits after they look).
RECEIPT_RACE = timedelta(seconds=60)
CHUNK = 1 << 20
SHOWN = 100  # problems printed; the count says how many more
# Every Vigil bundle is signed: a missing manifest.sig fails the check.
SIGNATURE_REQUIRED = True


# --- 1. The canonical event hash (the same as Vigil's event log; a test binds the two) ----------

HASHED_FIELDS = ("stream", "stream_seq", "kind", "actor", "occurred_at", "recorded_at", "data", "corrects",
                 "prev_hash")


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False), with the
# encoder made once rather than on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_json_string = json.encoder.encode_basestring  # a JSON string exactly as that encoder writes one


def canonical_json(value) -> str:
    return _CANONICAL.encode(value)


def event_hash(row: dict, data_json: str | None = None) -> str:
    """sha256(prev_hash + canonical_json(e)) of an exported event row (`seq` is the hashed `stream_seq`).
    `data_json`: canonical_json(row["data"]), when the caller has it already."""
    return hashlib.sha256(hashed_text(row, data_json).encode("utf-8")).hexdigest()


def hashed_text(row: dict, data_json: str | None = None) -> str:
    """prev_hash + canonical_json(e): the text an event's hash covers. A row of the usual types (text,
    an integer seq, an integer or null corrects) is written out field by field in the order canonical
    JSON sorts the keys into, which gives the same text (a test binds the two) without building a dict
    per row; any other row is serialised whole."""
    stream, seq, kind, actor = row["stream"], row["seq"], row["kind"], row["actor"]
    occurred, recorded, corrects, prev_hash = row["occurred_at"], row["recorded_at"], row["corrects"], row["prev_hash"]
    if (type(stream) is type(kind) is type(actor) is type(occurred) is type(recorded) is type(prev_hash) is str
            and type(seq) is int and (corrects is None or type(corrects) is int)):
        data = canonical_json(row["data"]) if data_json is None else data_json
        return (f'{prev_hash}{{"actor":{_json_string(actor)},"corrects":{"null" if corrects is None else corrects},'
                f'"data":{data},"kind":{_json_string(kind)},"occurred_at":{_json_string(occurred)},'
                f'"prev_hash":{_json_string(prev_hash)},"recorded_at":{_json_string(recorded)},'
                f'"stream":{_json_string(stream)},"stream_seq":{seq}}}')
    fields = {name: row["seq" if name == "stream_seq" else name] for name in HASHED_FIELDS}
    return row["prev_hash"] + canonical_json(fields)


# --- 2. CSV cells as the bundle writes them (a test binds this to Vigil's CSV writer) ----------

BIDI_CONTROLS = {code: f"[U+{code:04X}]" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
ANY_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")  # found in C; translating every cell is slow
FORMULA_FIRST = frozenset(FORMULA_STARTS)  # each formula start is one character


def may_hold_bidi_control(json_text: str) -> bool:
    """False when no value parsed from `json_text` can hold a bidi control: in JSON text one is either
    the character itself (never in ASCII text) or a \\u escape (which starts \\u20)."""
    if "\\u20" in json_text:
        return True
    return not json_text.isascii() and ANY_BIDI_CONTROL.search(json_text) is not None


def shown_text(text: str) -> str:
    """`text` with each bidi control shown as a marker such as [U+202E]."""
    if text.isascii() or not ANY_BIDI_CONTROL.search(text):
        return text
    return text.translate(BIDI_CONTROLS)


def csv_cell(value) -> str:
    """The CSV text of a JSON value: None empty, true/false, numbers as Python prints them, structures
    as canonical JSON; text with bidirectional controls shown as markers such as [U+202E] and a
    leading ' before a formula start (OWASP CSV injection)."""
    if type(value) is str:  # most cells: tested first
        text = value
    elif value is None:
        return ""
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, (int, float)):
        return str(value)
    else:
        text = canonical_json(value) if isinstance(value, (dict, list)) else str(value)
    if ANY_BIDI_CONTROL.search(text):
        text = text.translate(BIDI_CONTROLS)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# --- 3. Ed25519 verification, from RFC 8032 section 5.1.7 --------------------------------------

P = 2 ** 255 - 19                                          # the field prime
L = 2 ** 252 + 27742317777372353535851937790883648493      # the order of the base point
D = -121665 * pow(121666, P - 2, P) % P                    # the curve constant d
SQRT_M1 = pow(2, (P - 1) // 4, P)                          # a square root of -1 mod p


def _point_add(a, b):
    """Addition in extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 5.1.4)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    ea, eb = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    ec, ed = t1 * 2 * D * t2 % P, z1 * 2 * z2 % P
    e, f, g, h = eb - ea, ed - ec, ed + ec, eb + ea
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _scalar_mult(scalar: int, point):
    result = (0, 1, 1, 0)  # the neutral element
    while scalar:
        if scalar & 1:
            result = _point_add(result, point)
        point = _point_add(point, point)
        scalar >>= 1
    return result


def _same_point(a, b) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def _decode_point(encoded: bytes):
    """The point a 32-byte encoding names, or None when it names none (RFC 8032 5.1.3)."""
    if len(encoded) != 32:
        return None
    number = int.from_bytes(encoded, "little")
    x_sign, y = number >> 255, number & ((1 << 255) - 1)
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P != 0:
        if (v * x * x + u) % P != 0:
            return None
        x = x * SQRT_M1 % P
    if x == 0 and x_sign:
        return None
    if x & 1 != x_sign:
        x = P - x
    return (x, y, 1, x * y % P)


_BASE_Y = 4 * pow(5, P - 2, P) % P
BASE = _decode_point(_BASE_Y.to_bytes(32, "little"))  # x is even (positive), as the RFC defines B


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under `public_key` (RFC 8032 5.1.7)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a_point, r_point = _decode_point(public_key), _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a_point is None or r_point is None or s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    # The group equation [8][S]B = [8]R + [8][k]A', checked with the cofactor as the RFC states it.
    left = _scalar_mult(8 * s, BASE)
    right = _scalar_mult(8, _point_add(r_point, _scalar_mult(k, a_point)))
    return _same_point(left, right)


# --- 4. Reading the bundle ---------------------------------------------------------------------

class BundleError(Exception):
    """The file cannot be checked at all (not a zip, no manifest…)."""


class Check:
    """The outcome: every problem found, and what was checked."""

    def __init__(self, path, manifest: dict):
        self.path, self.manifest = path, manifest
        self.problems: list[str] = []
        self.notices: list[str] = []  # facts worth printing that are not (yet) failures, e.g. unsigned
        self.files = self.events = self.segments = 0
        self.signed_by: str | None = None  # the key fingerprint, once the signature checks out
        self.manifest_sha256 = ""
        self.signed = None  # set by `vigil verify --bundle` (vigil_ir.exports.bundle.signature_check)
        self.previous_given = False  # --previous: the bundle before this one is checked against previous_bundle
        self.key_publications: list[dict] = []  # the audit log's audit.signing_key_published rows, for the caller

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")


class HashingReader(io.RawIOBase):
    """Reads a zip member while hashing and counting every byte read, so each file is read once."""

    def __init__(self, source):
        self.source, self.digest, self.size = source, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        self.digest.update(data)
        self.size += len(data)
        buffer[:len(data)] = data
        return len(data)

    def drain(self) -> None:
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass


def json_rows(text, check: Check, path: str):
    """(line, object) for each object of a bundle JSON table: an array with one object per line."""
    for number, line in enumerate(text, 1):
        line = line.strip()
        if line in ("[", "]", "[]", ""):
            continue
        line = line[:-1] if line.endswith(",") else line
        try:
            row = json.loads(line)
        except ValueError:
            check.problem(path, f"line {number} is not a JSON object")
            continue
        if isinstance(row, dict):
            yield line, row
        else:
            check.problem(path, f"line {number} is not a JSON object")


def load_manifest(archive: zipfile.ZipFile, path) -> tuple[dict, bytes]:
    if MANIFEST not in archive.namelist():
        raise BundleError(f"{path} has no {MANIFEST}: it is not a Vigil evidence bundle")
    raw = archive.read(MANIFEST)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: {MANIFEST} is not a {FORMAT} manifest")
    files, log = manifest.get("files"), manifest.get("event_log")
    well_formed = (isinstance(files, list) and isinstance(log, dict) and isinstance(log.get("segments"), dict)
                   and isinstance(log.get("heads"), dict) and isinstance(manifest.get("period"), dict)
                   and all(isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str)
                           and isinstance(e.get("bytes"), int) for e in files))
    if not well_formed:
        raise BundleError(f"{path}: {MANIFEST} lacks a well-formed period, files list or event_log section")
    if manifest.get("layout", 1) not in LAYOUTS:
        raise BundleError(f"{path}: {MANIFEST} says layout {manifest.get('layout')!r}; this checker reads layouts "
                          f"{', '.join(map(str, LAYOUTS))}: check it with the verify.py inside that bundle, or a "
                          "Vigil at least as new as the one that wrote it")
    return manifest, raw


# --- Times and keys ----------------------------------------------------------------------------

def parse_time(value) -> datetime | None:
    """An exported time (`2025-03-10T09:00:00.000000Z`) as an aware datetime; None for None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shown_time(value) -> str:
    """A time as packets show it to people: `2025-03-10 09:00:00 UTC`."""
    moment = parse_time(value)
    return "not set" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _shown(value) -> str:
    """shown_time, with the exported form (`2025-03-10T09:00:00.000000Z`) cut rather than parsed."""
    if isinstance(value, str) and len(value) == 27 and value[10] == "T" and value[-1] == "Z":
        return f"{value[:10]} {value[11:19]} UTC"
    try:
        return shown_time(value)
    except (ValueError, TypeError):
        return repr(value)


def minutes_between(start, end) -> float | None:
    if start is None or end is None:
        return None
    return round((parse_time(end) - parse_time(start)).total_seconds() / 60, 1)


def key_number(key, prefix: str) -> int | None:
    if isinstance(key, str) and key.startswith(prefix) and key[len(prefix):].isdecimal():
        return int(key[len(prefix):])
    return None


# --- 5. What the event log says about each incident --------------------------------------------

def _digest(text: str) -> bytes:
    """A short digest to compare a value with one read earlier without keeping it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8]


def _unhashed(event: dict) -> str:
    """The fields of an exported event its hash does not cover, and the hash (which covers the rest)."""
    return f"{event.get('id')!r}\x00{event.get('actor_name')!r}\x00{event.get('hash')!r}"


PACKET_EVENT_FIELDS = ("id", "stream", "seq", "occurred_at", "recorded_at", "actor", "actor_name", "kind", "data",
                       "corrects", "prev_hash", "hash")
CARRIED_OVER_REASONS = {"incident.closed": "closed in the period",
                        "pir.completed": "post-incident review completed in the period"}


# A Slack user id (U…, or W… on Enterprise Grid, with at least one digit): Vigil's own rule.
USER_ID = re.compile(r"^[UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{1,}$")
STEP_STATES = {"playbook.step_completed": "done", "playbook.step_skipped": "skipped", "playbook.step_reopened": "open"}


class IncidentStream:
    """One incident's stream read from an incident event-log file: the incident's state and milestones
    folded from its events; while the stream is read, each event's times and summary as the packet's
    timeline shows them (its packets are checked as soon as the stream ends, then these are let go);
    in layout 1, where other files repeat the rows, a short digest of each row, so they can be compared
    with it without keeping the rows (16 bytes an event, not the event)."""

    def __init__(self, stream: str, whole_rows: bool = True):
        self.stream = stream
        self.whole_rows = whole_rows  # layout 1: other files repeat the rows, so a digest of each is kept
        self.state = {"lead": None, "comms": None, "scribe": None, "channel_id": None, "customer_impact": "",
                      "root_cause": ""}
        self.declared_by = self.declared_recorded_at = None
        self.acknowledged = self.mitigated = self.resolved = self.closed = self.closed_by = None
        self.paged = self.page_acknowledged = None
        self.close_data: dict | None = None
        self.events, self.head = 0, None
        self.in_period_because: list[str] = []
        self.security_at_end = self.security_ever = False  # folded from events recorded before the period end
        self.pir_completed_hash = None
        self.rows, self.packet_rows = bytearray(), bytearray()
        self.timeline: list | None = []  # (occurred, recorded, summary) as the HTML timeline shows each event
        # For an exercise's register row: who took part, the playbooks attached, each step's latest state.
        self.exercise: dict = {}
        self.participants: list = []
        self.playbooks: list = []
        self.steps: dict = {}

    def add(self, row: dict, line: str, start: datetime, end: datetime, recorded: datetime | None) -> None:
        """`recorded`: the row's recorded_at, parsed."""
        kind, actor, data = row.get("kind"), row.get("actor") or "", row.get("data")
        data = data if isinstance(data, dict) else {}
        self._fold(kind, actor, data)
        if self.stream.startswith("exercise:"):
            self._exercise(kind, actor, data)
        self._milestones(kind, actor, data, row.get("recorded_at"), row.get("occurred_at"))
        if kind == "incident.declared" or (kind == "incident.security_changed" and recorded is not None
                                           and recorded < end):
            self.security_at_end = self.state.get("security", False)
            self.security_ever = self.security_ever or self.security_at_end
        if kind == "pir.completed":
            self.pir_completed_hash = row.get("hash")
        if recorded is not None and start <= recorded < end:
            reason = CARRIED_OVER_REASONS.get(kind)
            if kind == "incident.status_changed" and data.get("to") == "resolved":
                reason = "resolved in the period"
            if reason and reason not in self.in_period_because:
                self.in_period_because.append(reason)
        self.events, self.head = self.events + 1, row.get("hash")
        if self.whole_rows:
            self.rows += _digest(line)  # the exact line: the audit trail writes the same event the same way
            self.packet_rows += _digest(_unhashed(row))
        if self.timeline is None:  # the stream's rows are not together (reported): its packets were checked
            self.timeline = []
        self.timeline.append((_shown(row.get("occurred_at")), _shown(row.get("recorded_at")),
                              shown_text(str(row.get("summary")))))

    def _fold(self, kind, actor: str, data: dict) -> None:
        state = self.state
        if kind == "incident.declared":
            state.update(title=data.get("title"), type=data.get("type"), security=bool(data.get("security")),
                         private=bool(data.get("private", False)),
                         severity_initial=data.get("severity"), severity_final=data.get("severity"),
                         status=data.get("status"), detected_at=data.get("detected_at"), declared_by=actor)
            self.declared_by = actor
        elif kind == "incident.detected_at_changed":
            state["detected_at"] = data.get("to")
        elif kind == "incident.status_changed":
            state["status"] = data.get("to")
        elif kind == "incident.severity_changed":
            state["severity_final"] = data.get("to")
        elif kind == "incident.security_changed":
            state["security"] = bool(data.get("to"))
        elif kind == "incident.role_assigned" and data.get("role") in ("lead", "comms", "scribe"):
            state[data["role"]] = data.get("to")
        elif kind == "incident.channel_created":
            state["channel_id"] = data.get("channel")
        elif kind == "incident.closed":
            state.update(status="closed", customer_impact=data.get("customer_impact", ""),
                         root_cause=data.get("root_cause", ""))

    def _milestones(self, kind, actor: str, data: dict, at, occurred=None) -> None:
        """acknowledged: the first act of a person other than the declarer, or the lead assigned;
        mitigated: the first move to monitoring or resolved; resolved: the last move to resolved not
        undone since; closed: the close event (which also resolves an incident not yet resolved).
        Paged: the first page request; then acknowledged is the first page acknowledgement (its
        occurred_at, the provider's time), counted from the first page."""
        if kind == "page.requested" and self.paged is None:
            self.paged = at
        if kind == "page.acknowledged" and self.page_acknowledged is None:
            self.page_acknowledged = occurred
        human = not actor.startswith("system:")
        if self.acknowledged is None and kind != "incident.declared" and (
                (human and actor != self.declared_by) or (kind == "incident.role_assigned" and data.get("role") == "lead")):
            self.acknowledged = at
        if kind == "incident.status_changed":
            to = data.get("to")
            if to in ("monitoring", "resolved") and self.mitigated is None:
                self.mitigated = at
            self.resolved = at if to == "resolved" else None
        if kind == "incident.closed":
            self.closed, self.closed_by, self.close_data = at, actor, data
            self.resolved = self.resolved or at

    def _took_part(self, user) -> None:
        if isinstance(user, str) and len(user) <= 32 and USER_ID.match(user) and user not in self.participants:
            self.participants.append(user)

    def _exercise(self, kind, actor: str, data: dict) -> None:
        """Participants: who acted, was given a role or a step, or attended the review, in order of first
        appearance; playbooks as attached; steps by their latest state (an undo opens one again)."""
        self._took_part(actor)
        if kind == "incident.declared":
            self.exercise = data.get("exercise") if isinstance(data.get("exercise"), dict) else {}
        elif kind in ("incident.role_assigned", "playbook.step_assigned"):
            self._took_part(data.get("to"))
        elif kind == "pir.completed" and isinstance(data.get("attendees"), list):
            for user in data["attendees"]:
                self._took_part(user)
        elif kind == "playbook.attached":
            self.playbooks.append(f"{data.get('playbook_id')} v{data.get('version')} sha256:{data.get('sha256')}")
            for step in data.get("steps") or []:
                self.steps[f"{data.get('run_id')}:{step}"] = "open"
        elif kind in STEP_STATES:
            self.steps[f"{data.get('run_id')}:{data.get('step_id')}"] = STEP_STATES[kind]

    def exercise_columns(self) -> dict:
        """The exercise register's columns that its events give."""
        close, states = self.close_data or {}, list(self.steps.values())
        return {"kind": self.exercise.get("kind"), "scenario": self.exercise.get("scenario"),
                **{name: self.state.get(name) for name in ("title", "type", "status", "lead")},
                "severity": self.state.get("severity_final"), "declared_by": self.declared_by,
                "participants": " ".join(self.participants) or None, "playbooks": "; ".join(self.playbooks) or None,
                "steps_done": states.count("done"), "steps_skipped": states.count("skipped"),
                "steps_open": states.count("open"), "closed_at": self.closed,
                "close_summary": close.get("customer_impact"), "root_cause": close.get("root_cause"),
                "findings": close.get("lessons_learned"), "event_count": self.events, "chain_head_hash": self.head}

    def expected_columns(self, row: dict) -> dict:
        """The incident's population columns as its events say they are."""
        open_items = [str(item) for item in (self.close_data or {}).get("open_items") or []]
        acknowledged = self.page_acknowledged if self.paged else self.acknowledged
        expected = {**self.state, "acknowledged_at": acknowledged, "mitigated_at": self.mitigated,
                    "resolved_at": self.resolved, "closed_at": self.closed, "closed_by": self.closed_by,
                    "closed_with_open_items": "; ".join(open_items) or None,
                    "close_override_reason": (self.close_data or {}).get("override_reason") if open_items else None,
                    "event_count": self.events, "chain_head_hash": self.head,
                    "in_period_because": "; ".join(self.in_period_because)}
        declared, detected = row.get("declared_at"), expected.get("detected_at")
        expected.update(minutes_to_declare=minutes_between(detected, declared),
                        minutes_to_acknowledge=minutes_between(self.paged or declared, acknowledged),
                        paged_at=self.paged, page_acknowledged_at=self.page_acknowledged,
                        minutes_to_page_acknowledge=minutes_between(self.paged, self.page_acknowledged),
                        minutes_to_mitigate=minutes_between(detected, self.mitigated),
                        minutes_to_resolve=minutes_between(detected, self.resolved))
        return expected

    def digest_at(self, which: bytearray, seq) -> bytes | None:
        index = (seq - 1) * 8 if isinstance(seq, int) and seq >= 1 else -1
        return bytes(which[index:index + 8]) if 0 <= index < len(which) else None


# --- 6. Chains -----------------------------------------------------------------------------------

class ChainCheck:
    """One event-log file's rows, in (stream, seq) order, against the manifest's segments for it."""

    def __init__(self, check: Check, path: str, segments: list):
        self.check, self.path = check, path
        self.expected = {segment.get("stream"): segment for segment in segments if isinstance(segment, dict)}
        self.seen: set = set()
        self.current: dict | None = None  # the segment being read: stream, seq, hash, events

    def problem(self, text: str) -> None:
        self.check.problem(self.path, text)

    def row(self, row: dict, data_json: str | None = None) -> None:
        """`data_json`: canonical_json(row["data"]), when the caller has it already."""
        stream, seq = row.get("stream"), row.get("seq")
        try:
            recomputed = event_hash(row, data_json)
        except (KeyError, TypeError, ValueError) as exc:
            self.problem(f"stream {stream} seq {seq}: row cannot be hashed ({type(exc).__name__}: {exc})")
            return
        current = self.current
        if current is None or current["stream"] != stream:
            self._close()
            self._open(row, f"stream {stream} seq {seq}")
            current = self.current = {"stream": stream, "seq": seq, "hash": None, "events": 0}
        else:
            if seq != current["seq"] + 1:
                self.problem(f"stream {stream} seq {seq}: sequence gap (expected seq {current['seq'] + 1})")
            if row.get("prev_hash") != current["hash"]:
                self.problem(f"stream {stream} seq {seq}: prev_hash does not link (expected {current['hash']}, "
                             f"found {row.get('prev_hash')})")
        if recomputed != row.get("hash"):
            self.problem(f"stream {stream} seq {seq}: hash mismatch (expected {recomputed}, found {row.get('hash')})")
        current["seq"], current["hash"] = seq, row.get("hash")
        current["events"] += 1
        self.check.events += 1

    def _open(self, row: dict, where: str) -> None:
        stream, seq = row.get("stream"), row.get("seq")
        if stream in self.seen:
            self.problem(f"stream {stream}: its rows are not together (seen again at seq {seq})")
        self.seen.add(stream)
        segment = self.expected.get(stream)
        if segment is None:
            self.problem(f"{where}: stream {stream} is not among the manifest's chain segments")
            return
        if seq != segment.get("first_seq"):
            self.problem(f"stream {stream}: starts at seq {seq}; the manifest says {segment.get('first_seq')}")
        if row.get("prev_hash") != segment.get("prev_hash"):
            self.problem(f"{where}: prev_hash differs from the manifest's segment "
                         f"(expected {segment.get('prev_hash')}, found {row.get('prev_hash')})")
        if segment.get("first_seq") == 1 and segment.get("prev_hash") != GENESIS_HASH:
            self.problem(f"stream {stream}: a segment from seq 1 must start from 64 zeros")

    def _close(self) -> None:
        current, self.current = self.current, None
        if current is None:
            return
        self.check.segments += 1
        segment = self.expected.get(current["stream"])
        if segment is None:
            return
        if (current["seq"], current["hash"]) != (segment.get("last_seq"), segment.get("head_hash")):
            self.problem(f"stream {current['stream']}: ends at seq {current['seq']} hash {current['hash']}; "
                         f"the manifest says seq {segment.get('last_seq')} hash {segment.get('head_hash')}")
        if current["events"] != segment.get("events"):
            self.problem(f"stream {current['stream']}: {current['events']} events; the manifest says "
                         f"{segment.get('events')}")

    def finish(self) -> None:
        self._close()
        for stream in sorted(set(self.expected) - self.seen, key=str):
            self.problem(f"stream {stream}: in the manifest's chain segments but no rows in the file")


# --- 7. The checks of one bundle -----------------------------------------------------------------

E2_FILES = {"incident_events.json": "incidents.json",
            "incidents_carried_over_events.json": "incidents_carried_over.json",
            "exercise_events.json": "exercises.json"}
STREAM_PREFIXES = {"INC-": "incident:", "EX-": "exercise:"}
PACKET_FOLDERS = {"incidents": "incidents.json", "incidents_carried_over": "incidents_carried_over.json"}
PACKET = re.compile(r"^(incidents|incidents_carried_over)/(INC-\d+)/\2\.(json|md|html)$")
SEQUENCE_RULES = {"INC-": "declared in the period", "RISK-": "created before the period end",
                  "ACT-": "created, due or completed in the period"}
HTML_TIMELINE_ROW = re.compile(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td><td>[^<]*</td><td>(.*?)</td></tr>",
                               re.DOTALL)
ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|amp|lt|gt|quot|apos);")


ENTITY_NAMES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _entity(match) -> str:
    name = match.group(1)
    if name in ENTITY_NAMES:
        return ENTITY_NAMES[name]
    try:
        return chr(int(name[2:], 16) if name.startswith("#x") else int(name[1:]))
    except (ValueError, OverflowError):  # names no character: left as written
        return match.group(0)


def _unescape(text: str) -> str:
    return ENTITY.sub(_entity, text) if "&" in text else text


ODD_VALUES = (KeyError, TypeError, ValueError, AttributeError, IndexError)
# An action's ticket (action_items): the trackers, the forms of their keys, the states Vigil records.
TICKET_KEYS = {"jira": re.compile(r"^[A-Z][A-Z0-9_]*-\d+$"), "linear": re.compile(r"^[A-Z][A-Z0-9]*-\d+$"),
               "github": re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+#\d+$")}
TICKET_STATES = ("pending", "unknown", "open", "done", "cancelled", "missing")


def one_line(text: str) -> str:
    """`text` on one line: its lines that are not blank, joined by " ¶ "."""
    parts = text.splitlines()
    if len(parts) == 1 and parts[0] == text:  # the usual text, with no line break
        return text if text.strip() else ""
    return " ¶ ".join(part for part in parts if part.strip())


class Bundle:
    """Reads every member once, in an order that lets later files be checked against earlier ones:
    chain heads, then the event logs (each incident's packets as soon as its stream has been read),
    then the tables, then the other files."""

    def __init__(self, archive: zipfile.ZipFile, check: Check):
        self.archive, self.check, self.manifest = archive, check, check.manifest
        period = self.manifest["period"]
        try:
            self.start, self.end = parse_time(period.get("start")), parse_time(period.get("end"))
            self.generated_at = parse_time(self.manifest.get("generated_at"))
        except (ValueError, TypeError) as exc:
            raise BundleError(f"{check.path}: {MANIFEST} has a period or generated_at that is not a time ({exc})")
        if self.start is None or self.end is None or self.start >= self.end:
            raise BundleError(f"{check.path}: {MANIFEST} has no period with a start before its end")
        self.listed = {entry["path"]: entry for entry in self.manifest["files"]}
        self.layout = self.manifest.get("layout", 1)
        self.present: set = set()
        self.segments = self.manifest["event_log"]["segments"]
        self.heads_file = self.manifest["event_log"]["heads"].get("file")
        self.heads: dict | None = None  # stream → (seq, hash), from chain_heads
        self.incident_streams: dict[str, IncidentStream] = {}
        self.e2_streams: dict[str, set] = {name: set() for name in E2_FILES}
        self.keys: dict[str, list] = {prefix: [] for prefix in SEQUENCE_RULES}
        self.security_keys: set = set()
        self.population: dict[str, set] = {"incidents.json": set(), "incidents_carried_over.json": set(),
                                           "exercises.json": set()}
        self.action_parents: dict = {}  # action key → its parent_ref in action_items
        self.exercise_actions: dict = {}  # exercise key → the actions its register row lists
        self.packets: dict[str, set] = {folder: set() for folder in PACKET_FOLDERS}
        self.rows: dict[str, int] = {}
        self.packet_events: dict[str, list] = {}  # the packet folder being read → its JSON events
        self.pir_columns: dict[str, dict] = {}  # incident key → its PIR columns in incidents/incidents_carried_over
        self.register: list = []  # (row label, methodology version, scores and levels) for the methodology check
        self.methodologies: dict | None = None
        self.receipts: dict = {}  # (stream, seq) → the audit.bundle_exported event rows in the event logs
        self.names_shown: dict = {}  # user id → {name shown in a summary of the period → where}
        self.done: set = set()  # the members read
        self.people_names: dict | None = None  # user id → the names people.json gives them in the period
        self.expected_event_columns: dict = {}  # (stream, actor) → the event columns they give

    # -- the order files are read in
    def run(self) -> None:
        check = self.check
        names = [name for name in self.archive.namelist() if not name.endswith("/")]
        for name, count in sorted(Counter(names).items()):
            if count > 1:
                check.problem(name, f"appears {count} times in the zip")
        for name in sorted(set(names) - set(self.listed) - {MANIFEST, SIGNATURE}):
            check.problem(name, "in the bundle but not listed in the manifest")
        for name in sorted(set(self.listed) - set(names)):
            check.problem(name, "listed in the manifest but missing from the bundle")
        self.present = set(self.listed) & set(names)
        done = self.done
        # A table is a JSON file with a CSV twin listed (plus the event logs and heads, twin or not);
        # a JSON file with rows and no twin (the methodology, the configurations) is one document.
        tables = sorted(path[:-5] for path in self.present if path.endswith(".json")
                        and self.listed[path].get("rows") is not None and path[:-5] + ".csv" in self.listed)
        # chain heads first (segments end on them), the incident event logs next (the audit trail and
        # the packets are compared with them), then the other event logs.
        logs = sorted(self.segments, key=lambda name: (name not in E2_FILES, name))
        first = [name[:-5] for name in (self.heads_file, *logs) if isinstance(name, str)]
        for base in [*first, *[t for t in tables if t not in first]]:
            if f"{base}.json" in self.present and base + ".json" not in done:
                self.read_table(base)
                done |= {f"{base}.json", f"{base}.csv"}
        for path in sorted(self.present - done, key=self._file_order):
            self.read_file(path)
            done.add(path)
        self.after_all()

    @staticmethod
    def _file_order(path: str):
        match = PACKET.match(path)
        if match:  # a packet's JSON before its Markdown and HTML, which are checked against it
            return (1, match.group(1), match.group(2), match.group(3) != "json", path)
        return (0, "", "", False, path)

    # -- reading members
    def _open(self, path: str):
        raw = HashingReader(self.archive.open(path))
        return raw, io.TextIOWrapper(io.BufferedReader(raw, CHUNK), encoding="utf-8-sig", newline="")

    def _close(self, path: str, raw: HashingReader, rows: int | None) -> None:
        raw.drain()
        raw.source.close()
        entry, check = self.listed[path], self.check
        if raw.digest.hexdigest() != entry["sha256"]:
            check.problem(path, f"SHA-256 differs from the manifest (manifest {entry['sha256']}, "
                                f"file {raw.digest.hexdigest()})")
        if raw.size != entry["bytes"]:
            check.problem(path, f"{raw.size} bytes; the manifest says {entry['bytes']}")
        if rows is not None and rows != entry.get("rows"):
            check.problem(path, f"{rows} rows; the manifest says {entry.get('rows')}")
        if rows is not None:
            self.rows[path] = rows
        check.files += 1

    def read_table(self, base: str) -> None:
        """`<base>.json` row by row, its CSV twin (if listed) compared cell by cell alongside."""
        json_path, csv_path = f"{base}.json", f"{base}.csv"
        visit, finish = self.visitor(json_path)
        raw, text = self._open(json_path)
        twin = None
        if csv_path in self.present:
            twin_raw, twin_text = self._open(csv_path)
            twin = (twin_raw, csv.reader(twin_text))
        rows = csv_rows = 0
        try:
            header = next(twin[1], None) if twin else None
            for line, row in json_rows(text, self.check, json_path):
                rows += 1
                known = None
                try:
                    known = visit(row, rows, line)
                except ODD_VALUES as exc:  # a value of the wrong type where a time, key or number belongs
                    self.check.problem(json_path, f"row {rows}: cannot be checked ({type(exc).__name__}: {exc})")
                if twin is not None:
                    cells = next(twin[1], None)
                    csv_rows += cells is not None
                    self.compare_twin(csv_path, rows, header, row, cells, line, known)
            finish()
            if twin is not None:
                extra = sum(1 for _ in twin[1])
                csv_rows += extra
                if extra:
                    self.check.problem(csv_path, f"{extra} row(s) after the last row of {json_path}")
        except (UnicodeDecodeError, csv.Error, ValueError) as exc:
            self.check.problem(json_path if twin is None else base + ".csv/.json",
                               f"cannot be read ({type(exc).__name__}: {exc})")
            rows = csv_rows = None
        self._close(json_path, raw, rows)
        if twin is not None:
            self._close(csv_path, twin[0], csv_rows)

    def read_file(self, path: str) -> None:
        raw, text = self._open(path)
        rows = None
        try:
            if path.endswith(".csv") and self.listed[path].get("rows") is not None:
                rows = sum(1 for _ in csv.reader(text)) - 1  # a CSV without its JSON twin
            elif path.endswith(".json") and self.listed[path].get("rows") is not None:
                document = json.load(text)
                rows = len(document) if isinstance(document, list) else 1
                if path == "risk_methodology.json" and isinstance(document, list):
                    self.methodologies = {m.get("version"): m for m in document if isinstance(m, dict)}
            match = PACKET.match(path)
            if match:
                self.check_packet(path, match.group(1), match.group(2), match.group(3), text.read())
            elif path == "README.md":
                self.check_readme(text.read())
        except (UnicodeDecodeError, csv.Error, *ODD_VALUES) as exc:
            self.check.problem(path, f"cannot be read ({type(exc).__name__}: {exc})")
        self._close(path, raw, rows)

    # -- CSV twins
    def compare_twin(self, path: str, number: int, header, row: dict, cells, line: str = "",
                     known: dict | None = None) -> None:
        """`line`: the JSON text of `row`; `known`: values the row's visitor has serialised already, by
        column (an event's data as its canonical JSON text, which renders as the same cell)."""
        columns = list(row)
        if cells is not None and len(cells) == len(columns) and (header is None or header == columns):
            values = list(row.values())
            for column, text in (known or {}).items():
                values[columns.index(column)] = text
            if may_hold_bidi_control(line):
                rendered = [csv_cell(value) for value in values]
            else:  # no bidi control in the row: text is its own cell unless it starts like a formula; the
                # usual None and integers rendered here as csv_cell renders them
                rendered = [value if type(value) is str and value[:1] not in FORMULA_FIRST else
                            "" if value is None else str(value) if type(value) is int else csv_cell(value)
                            for value in values]
            if rendered == cells:
                return  # the common case, decided without building any message
        label = f"row {number}" + (f" ({next(iter(row.values()))})" if row else "")
        if header is not None and list(header) != list(row):
            if number == 1:
                self.check.problem(path, f"columns {header} differ from the JSON twin's {list(row)}")
            return
        if cells is None:
            self.check.problem(path, f"{label}: missing (the JSON twin has it)")
            return
        if len(cells) != len(row):
            self.check.problem(path, f"{label}: {len(cells)} cells; the JSON twin has {len(row)}")
            return
        for column, value, cell in zip(row, row.values(), cells):
            expected = csv_cell(value)
            if cell != expected:
                self.check.problem(path, f"{label}, column {column}: {cell!r} differs from its JSON twin "
                                         f"(which renders as {expected!r})")

    # -- what each table's rows are checked against
    def visitor(self, path: str):
        if path == self.heads_file:
            return self._heads_visitor(path)
        if path in self.segments:
            return self._events_visitor(path)
        checks = {"incidents.json": self.incident_row, "incidents_carried_over.json": self.incident_row,
                  "people.json": self.people_row,
                  "action_items.json": self.action_row, "risk_reviews.json": self.review_row,
                  "notifications.json": self.notification_row, "risk_acceptances.json": self.acceptance_row,
                  "pirs.json": self.pir_row("pirs.json", "incidents.json"),
                  "pirs_carried_over.json": self.pir_row("pirs_carried_over.json", "incidents_carried_over.json"),
                  "security_incidents.json": self.security_row,
                  "update_cadence.json": self.cadence_row, "exercises.json": self.exercise_row}
        if path.startswith("risk_register_"):
            return self.register_row, lambda: None
        if path == "security_incidents.json":
            return self.security_row, self.security_complete
        return checks.get(path, lambda row, number, line: None), lambda: None

    def in_period(self, path: str, label: str, column: str, value, *, before_end_only=False) -> bool:
        try:
            moment = parse_time(value)
        except (ValueError, TypeError):
            self.check.problem(path, f"{label}: {column} {value!r} is not a time")
            return False
        if moment is None:
            return False
        return moment < self.end and (before_end_only or moment >= self.start)

    def _heads_visitor(self, path: str):
        digest, self.heads = hashlib.sha256(), {}
        counted = {"events": 0}

        def visit(row: dict, number: int, line: str) -> None:
            digest.update(f"{row.get('stream')} {row.get('hash')}\n".encode("utf-8"))
            self.heads[row.get("stream")] = (row.get("seq"), row.get("hash"))
            counted["events"] += row.get("seq") if isinstance(row.get("seq"), int) else 0

        def finish() -> None:
            heads = self.manifest["event_log"]["heads"]
            if "sha256:" + digest.hexdigest() != heads.get("digest"):
                self.check.problem(path, f"digest of the chain_heads rows is sha256:{digest.hexdigest()}; "
                                         f"the manifest says {heads.get('digest')}")
            for claim, found in (("streams", len(self.heads)), ("events", counted["events"])):
                if claim in heads and heads[claim] != found:
                    self.check.problem(MANIFEST, f"event_log.heads.{claim} is {heads[claim]}; chain_heads has {found}")
        return visit, finish

    def _events_visitor(self, path: str):
        chain = ChainCheck(self.check, path, self.segments.get(path) or [])
        ends: dict = {}  # stream → [first recorded_at, last recorded_at], for the audit trail's period rule
        ends_reported: set = set()  # layout 2: streams already reported as repeated from an incident event log
        reading: list = [None]  # the incident stream whose rows are being read
        population_log = path in E2_FILES

        def visit(row: dict, number: int, line: str) -> dict | None:
            data, known = row.get("data"), None
            if isinstance(data, (dict, list)):  # its canonical JSON is both hashed and the CSV data cell
                try:
                    known = {"data": canonical_json(data)}
                except ValueError:  # a value canonical JSON cannot hold (NaN): the chain check reports it
                    pass
            chain.row(row, known and known["data"])
            stream, seq, kind = row.get("stream"), row.get("seq"), row.get("kind")
            label = f"stream {stream} seq {seq}"
            if kind == RECEIPT_KIND:
                self.receipts[(stream, seq)] = row
            elif kind == KEY_PUBLISHED and path == "audit_log.json":
                self.check.key_publications.append(row)
            try:
                recorded = parse_time(row.get("recorded_at"))
            except (ValueError, TypeError):
                recorded = None
                self.check.problem(path, f"{label}: recorded_at {row.get('recorded_at')!r} is not a time")
            self.summary(path, label, row, recorded)
            self.event_columns(path, label, row)
            if population_log:
                if isinstance(stream, str) and stream.startswith(("incident:", "exercise:")):
                    self.e2_streams[path].add(stream)
                    fold = self.incident_streams.get(stream)
                    if fold is None:
                        fold = self.incident_streams[stream] = IncidentStream(stream, whole_rows=self.layout < 2)
                    if reading[0] is not fold:
                        self.stream_read(reading[0])
                        reading[0] = fold
                    fold.add(row, line, self.start, self.end, recorded)
            else:
                ends.setdefault(stream, [row.get("recorded_at"), None])[1] = row.get("recorded_at")
                fold = self.incident_streams.get(stream)
                if self.layout >= 2 and fold is not None and stream not in ends_reported:
                    ends_reported.add(stream)
                    holder = next((name for name, streams in self.e2_streams.items() if stream in streams), "")
                    self.check.problem(path, f"stream {stream}: its every event is in {holder}; layout "
                                             f"{self.layout} lists a stream once")
                expected = fold.digest_at(fold.rows, seq) if fold and self.layout < 2 else None
                if expected is not None and expected != _digest(line):
                    self.check.problem(path, f"{label}: differs from the same event in the incident event log")
            return known

        def finish() -> None:
            self.stream_read(reading[0])
            chain.finish()
            for stream, (first, last) in sorted(ends.items(), key=lambda item: str(item[0])):
                for which, value in (("first", first), ("last", last)):
                    if not self.in_period(path, f"stream {stream}", "recorded_at", value):
                        self.check.problem(path, f"stream {stream}: its {which} event was recorded at {value}, "
                                                 f"outside the period (the selection: events recorded in the period)")
        return visit, finish

    def stream_read(self, fold: IncidentStream | None) -> None:
        """The stream's rows have all been read: its packets are checked now, while its timeline is at
        hand, and the timeline let go."""
        if fold is None:
            return
        number = key_number(fold.stream, "incident:")
        if number is not None and fold.stream == f"incident:{number}":  # the stream its packets name
            key = f"INC-{number}"
            for folder in PACKET_FOLDERS:
                for path in (f"{folder}/{key}/{key}.{fmt}" for fmt in ("json", "md", "html")):  # the JSON first
                    if path in self.present and path not in self.done:
                        self.read_file(path)
                        self.done.add(path)
        fold.timeline = None

    def summary(self, path: str, label: str, row: dict, recorded: datetime | None) -> None:
        """The summary column is the sentence the event's data gives, with people named; names shown for
        events of the period (`recorded`: the row's recorded_at) are checked against people.json once it
        has been read."""
        shown = row.get("summary")
        expected = one_line(describe(ExportedEvent(row)))
        names = names_in_summary(expected, shown) if isinstance(shown, str) else None
        if names is None:
            self.check.problem(path, f"{label}, column summary: {shown!r} is not what its data says "
                                     f"({expected!r}, with people named)")
            return
        if recorded is None or not self.start <= recorded < self.end:
            return  # before the period: people.json holds the names of the period only
        for user_id, name in names:
            self.names_shown.setdefault(user_id, {}).setdefault(name, f"{path}: {label}")

    def people_row(self, row: dict, number: int, line: str) -> None:
        if self.people_names is None:
            self.people_names = {}
        names = {row.get("name")} | set(str(row.get("names_in_period") or "").split("; "))
        self.people_names[row.get("user_id")] = names - {None, ""}

    def names_in_summaries(self) -> None:
        if self.people_names is None:
            return  # no people.json (an older bundle): the names are not checked
        for user_id, shown in sorted(self.names_shown.items()):
            for name, where in sorted(shown.items()):
                if name not in self.people_names.get(user_id, set()):
                    self.check.problem(where.split(": ", 1)[0], f"{where.split(': ', 1)[1]}, column summary: names "
                                       f"{user_id} {name!r}, which people.json does not give as their name in the period")

    def event_columns(self, path: str, label: str, row: dict) -> None:
        """object_type and object_ref follow from the stream, actor_type from the actor."""
        key = (str(row.get("stream")), str(row.get("actor")))
        expected = self.expected_event_columns.get(key)
        if expected is None:
            expected = self.expected_event_columns[key] = self._event_columns(*key)
        for column, value in expected.items():
            if column in row and row[column] != value:
                self.check.problem(path, f"{label}, column {column}: {row[column]!r}; its stream and actor say {value!r}")

    @staticmethod
    def _event_columns(stream: str, actor: str) -> dict:
        match = re.match(r"^([a-z_]+):(\d+)$", stream)
        prefixes = {"incident": "INC-", "exercise": "EX-", "risk": "RISK-", "action": "ACT-"}
        if match:
            kind, number = match.groups()
            expected = {"object_type": kind, "object_ref": f"{prefixes[kind]}{number}" if kind in prefixes else stream}
        else:
            expected = {"object_type": stream.split(":", 1)[0], "object_ref": stream}
        expected["actor_type"] = ("system" if actor.startswith("system:") else
                                  "cli" if actor.startswith("cli:") else "user")
        return expected

    def incident_row(self, row: dict, number: int, line: str) -> None:
        path = "incidents.json" if "in_period_because" not in row else "incidents_carried_over.json"
        key = row.get("key")
        label = f"{key} (row {number})"
        incident = key_number(key, "INC-")
        if incident is None:
            self.check.problem(path, f"{label}: key {key!r} is not an incident key")
            return
        self.population[path].add(key)
        declared = row.get("declared_at")
        if path == "incidents.json":
            self.keys["INC-"].append(incident)
            if not self.in_period(path, label, "declared_at", declared):
                self.check.problem(path, f"{label}: declared_at {declared} is outside the period "
                                         f"{self.manifest['period'].get('start')} to {self.manifest['period'].get('end')} "
                                         "(the selection: declared in the period)")
        elif self.in_period(path, label, "declared_at", declared, before_end_only=True) is False or \
                parse_time(declared) >= self.start:
            self.check.problem(path, f"{label}: declared_at {declared} is not before the period start "
                                     f"{self.manifest['period'].get('start')} (the selection: declared before it)")
        events_file = "incident_events.json" if path == "incidents.json" else "incidents_carried_over_events.json"
        fold = self.incident_streams.get(f"incident:{incident}")
        if fold is None or f"incident:{incident}" not in self.e2_streams[events_file]:
            self.check.problem(path, f"{label}: its stream incident:{incident} has no events in {events_file}")
            return
        self.pir_columns[key] = {name: row.get(name) for name in ("pir_required", "pir_status", "pir_due_at",
                                                                  "pir_completed_at", "severity_final")}
        expected = fold.expected_columns(row)
        for column, value in row.items():
            if column in expected and expected[column] != value and not (
                    column == "in_period_because" and value is not None and path == "incidents.json"):
                self.check.problem(path, f"{label}, column {column}: {value!r}; its events in {events_file} "
                                         f"say {expected[column]!r}")

    def population_ref(self, path: str, column: str, population: str):
        """Rows of a table that is about the population's incidents must name one of them."""
        def visit(row: dict, number: int, line: str) -> None:
            key = row.get(column)
            if key not in self.population[population]:
                self.check.problem(path, f"row {number} ({key}): {column} {key} is not an incident of {population}")
        return visit

    def pir_row(self, path: str, population: str):
        """A PIR row is about an incident of its population and says what that incident's row says of
        its review; a completed review's record_hash is the hash of the incident's pir.completed event."""
        refer = self.population_ref(path, "incident_ref", population)

        def visit(row: dict, number: int, line: str) -> None:
            refer(row, number, line)
            key = row.get("incident_ref")
            label = f"{key} (row {number})"
            incident = self.pir_columns.get(key) or {}
            pairs = (("required_by_policy", "pir_required"), ("status", "pir_status"), ("due_at", "pir_due_at"),
                     ("completed_at", "pir_completed_at"), ("severity", "severity_final"))
            for column, theirs in pairs if incident.get("pir_status") is not None else pairs[-1:]:
                if column in row and theirs in incident and row[column] != incident[theirs]:
                    self.check.problem(path, f"{label}, column {column}: {row[column]!r}; {population} says "
                                             f"{theirs} {incident[theirs]!r}")
            fold = self.incident_streams.get(f"incident:{key_number(key, 'INC-')}")
            if fold is not None and "record_hash" in row and row["record_hash"] != fold.pir_completed_hash:
                self.check.problem(path, f"{label}, column record_hash: {row['record_hash']!r}; the incident's "
                                         f"pir.completed event has hash {fold.pir_completed_hash!r}")
            if row.get("completed_at") is not None and "on_time" in row:
                due = row.get("due_at")
                on_time = due is None or parse_time(row["completed_at"]) <= parse_time(due)
                if row["on_time"] != on_time:
                    self.check.problem(path, f"{label}, column on_time: {row['on_time']!r}; completed "
                                             f"{row['completed_at']}, due {due}: {on_time!r}")
        return visit

    def security_row(self, row: dict, number: int, line: str) -> None:
        """The security incidents are the population incidents flagged at any time before the period
        end (folded from incident.declared and incident.security_changed), with their flags."""
        path, key = "security_incidents.json", row.get("key")
        label = f"{key} (row {number})"
        self.population_ref(path, "key", "incidents.json")(row, number, line)
        self.security_keys.add(key)
        fold = self.incident_streams.get(f"incident:{key_number(key, 'INC-')}")
        if fold is None:
            return
        expected = {"security_at_period_end": fold.security_at_end, "security_now": fold.state.get("security"),
                    **{name: fold.state.get(name) for name in ("title", "type", "severity_final", "status")}}
        if not fold.security_ever:
            self.check.problem(path, f"{label}: its events never flag it a security incident before the period end")
        for column, value in expected.items():
            if column in row and row[column] != value:
                self.check.problem(path, f"{label}, column {column}: {row[column]!r}; its events say {value!r}")

    def security_complete(self) -> None:
        for key in sorted(self.population["incidents.json"] - self.security_keys, key=lambda k: key_number(k, "INC-")):
            fold = self.incident_streams.get(f"incident:{key_number(key, 'INC-')}")
            if fold is not None and fold.security_ever:
                self.check.problem("security_incidents.json", f"{key} is missing: its events flag it a security "
                                                              "incident before the period end")

    def cadence_row(self, row: dict, number: int, line: str) -> None:
        """Minutes late, outcome and reminder count follow from the row's own times."""
        path = "update_cadence.json"
        self.population_ref(path, "incident_ref", "incidents.json")(row, number, line)
        label = f"{row.get('incident_ref')} due {row.get('due_at')} (row {number})"
        expected = {"reminders_sent": len(row["reminder_times"].split("; ")) if row.get("reminder_times") else 0}
        if row.get("update_posted_at") is not None and row.get("due_at") is not None:
            late = (parse_time(row["update_posted_at"]) - parse_time(row["due_at"])).total_seconds()
            expected["minutes_late"] = round(max(late, 0) / 60, 1)
            expected["outcome"] = "on time" if late <= 0 else "late"
        for column, value in expected.items():
            if column in row and row[column] != value:
                self.check.problem(path, f"{label}, column {column}: {row[column]!r}; recomputed from its times: {value!r}")

    def action_row(self, row: dict, number: int, line: str) -> None:
        path, key = "action_items.json", row.get("action_ref")
        label = f"{key} (row {number})"
        action = key_number(key, "ACT-")
        if action is None:
            self.check.problem(path, f"{label}: {key!r} is not an action key")
            return
        self.keys["ACT-"].append(action)
        self.action_parents[key] = row.get("parent_ref")
        due = row.get("due_at")
        try:
            due_in = due is not None and self.start.date() <= date.fromisoformat(str(due)[:10]) <= \
                (self.end - timedelta(microseconds=1)).date()
        except ValueError:
            due_in = False
        if not (self.in_period(path, label, "created_at", row.get("created_at"))
                or self.in_period(path, label, "completed_at", row.get("completed_at")) or due_in):
            self.check.problem(path, f"{label}: created {row.get('created_at')}, due {due}, completed "
                                     f"{row.get('completed_at')}: none in the period (the selection: created, due or "
                                     "completed in the period)")
        if "ticket_tracker" in row:
            self.ticket_columns(path, label, row)

    def ticket_columns(self, path: str, label: str, row: dict) -> None:
        """The action's ticket: columns that agree with each other and with the action's status."""
        def problem(text: str) -> None:
            self.check.problem(path, f"{label}: {text}")

        tracker, state, key = row.get("ticket_tracker"), row.get("ticket_state"), row.get("ticket_key")
        columns = [name for name in row if name.startswith("ticket_")]
        if tracker is None:
            for name in columns:
                if row[name] is not None:
                    problem(f"{name} is {row[name]!r} but ticket_tracker is empty (no ticket)")
            return
        if tracker not in TICKET_KEYS:
            problem(f"ticket_tracker {tracker!r} is not one of {', '.join(sorted(TICKET_KEYS))}")
            return
        if state not in TICKET_STATES:
            problem(f"ticket_state {state!r} is not one of {', '.join(TICKET_STATES)}")
            return
        if (key is None) != (state == "pending"):
            problem(f"ticket_key {key!r} with ticket_state {state!r} (only a ticket not created yet has no key)")
        elif key is not None and not TICKET_KEYS[tracker].match(str(key)):
            problem(f"ticket_key {key!r} is not a {tracker} key")
        url = row.get("ticket_url")
        if url is not None and not str(url).startswith(("https://", "http://")):
            problem(f"ticket_url {url!r} is not a link")
        synced = row.get("ticket_synced_at")
        if state in ("open", "done", "cancelled", "missing") and synced is None:
            problem(f"ticket_state {state!r} but ticket_synced_at is empty (a state is only known by reading it)")
        elif synced is not None:
            try:
                late = parse_time(synced) > self.generated_at
            except (ValueError, TypeError):
                problem(f"ticket_synced_at {synced!r} is not a time")
            else:
                if late:
                    problem(f"ticket_synced_at {synced} is after the bundle was generated")
        divergence, status = row.get("ticket_divergence"), row.get("status")
        if divergence is not None:
            expected = ("ticket_done" if state in ("done", "cancelled") and status in ("open", "in_progress") else
                        "action_done" if state == "open" and status in ("done", "cancelled") else None)
            if divergence != expected:
                problem(f"ticket_divergence {divergence!r}, but the action is {status} and its ticket {state}"
                        + (f" (they disagree as {expected!r})" if expected else " (they agree)"))

    def exercise_row(self, row: dict, number: int, line: str) -> None:
        """An exercise declared in the period, its columns as its events in exercise_events say."""
        path, key = "exercises.json", row.get("exercise_ref")
        label = f"{key} (row {number})"
        exercise = key_number(key, "EX-")
        if exercise is None:
            self.check.problem(path, f"{label}: {key!r} is not an exercise key")
            return
        self.population[path].add(key)
        self.exercise_actions[key] = set((row.get("actions_raised") or "").split("; ")) - {""}
        if not self.in_period(path, label, "held_at", row.get("held_at")):
            self.check.problem(path, f"{label}: held_at {row.get('held_at')} is outside the period "
                                     f"{self.manifest['period'].get('start')} to {self.manifest['period'].get('end')} "
                                     "(the selection: declared in the period)")
        stream = f"exercise:{exercise}"
        fold = self.incident_streams.get(stream)
        if fold is None or stream not in self.e2_streams["exercise_events.json"]:
            self.check.problem(path, f"{label}: its stream {stream} has no events in exercise_events.json")
            return
        for column, value in fold.exercise_columns().items():
            if column in row and row[column] != value:
                self.check.problem(path, f"{label}, column {column}: {row[column]!r}; its events in "
                                         f"exercise_events.json say {value!r}")

    def exercise_actions_listed(self) -> None:
        """The actions action_items attributes to an exercise of the register are the ones it lists."""
        if "exercises.json" not in self.present or "action_items.json" not in self.present:
            return
        for action, parent in sorted(self.action_parents.items(), key=lambda item: key_number(item[0], "ACT-") or 0):
            if parent in self.exercise_actions and action not in self.exercise_actions[parent]:
                self.check.problem("exercises.json", f"{parent}: action_items.json lists {action} as raised by it; "
                                                     "the register does not")
        for exercise, listed in sorted(self.exercise_actions.items()):
            for action in sorted(listed):
                if action in self.action_parents and self.action_parents[action] != exercise:
                    self.check.problem("exercises.json", f"{exercise}: lists {action}, which action_items.json says "
                                                         f"was raised by {self.action_parents[action]}")

    def register_row(self, row: dict, number: int, line: str) -> None:
        key = row.get("risk_ref")
        path = next((p for p in self.present if p.startswith("risk_register_") and p.endswith(".json")), "risk_register")
        as_of = (self.end - timedelta(microseconds=1)).date().isoformat()
        label = f"{key} (row {number})"
        if row.get("as_of") != as_of or path != f"risk_register_{as_of}.json":
            self.check.problem(path, f"{label}: as_of {row.get('as_of')} is not the last day of the period ({as_of})")
        risk = key_number(key, "RISK-")
        if risk is None:
            self.check.problem(path, f"{label}: {key!r} is not a risk key")
        else:
            self.keys["RISK-"].append(risk)
        if "created_at" in row and not self.in_period(path, label, "created_at", row["created_at"], before_end_only=True):
            self.check.problem(path, f"{label}: created_at {row['created_at']} is not before the period end "
                                     "(the selection: created before the period end)")
        self.register.append((path, label, row.get("methodology_version"),
                              {name: row.get(name) for name in row if name.startswith(("inherent_", "residual_"))}))

    def review_row(self, row: dict, number: int, line: str) -> None:
        """A review is in the log when completed or due in the period; its status is as at the period end
        and its lateness counts whole days from the due day to the completion day."""
        path, label = "risk_reviews.json", f"{row.get('review_ref')} (row {number})"
        try:
            due = date.fromisoformat(str(row.get("due_at")))
            completed = parse_time(row.get("completed_at"))
        except (ValueError, TypeError):
            self.check.problem(path, f"{label}: due_at or completed_at is not a date/time")
            return
        completed_in = completed is not None and self.start <= completed < self.end
        due_in = self.start.date() <= due < self.end.date()
        because = "; ".join(reason for reason, applies in (("completed in the period", completed_in),
                                                           ("due in the period", due_in)) if applies)
        expected = {"in_log_because": because}
        if not because:
            self.check.problem(path, f"{label}: neither completed nor due in the period (the selection)")
        if completed is not None and completed < self.end:
            expected["status"] = "completed"
        elif row.get("status_at_generation") == "cancelled":
            expected["status"] = "cancelled"
        else:
            expected["status"] = "overdue" if due < self.end.date() else "open"
        if completed is not None and row.get("status_at_generation") == "completed":
            expected["days_late"] = max(0, (completed.date() - due).days)
            expected["on_time"] = expected["days_late"] == 0
        reminders = row.get("reminders")
        expected["reminders_sent"] = len(reminders.split("; ")) if reminders else 0
        for column, value in expected.items():
            if column in row and row[column] != value:
                self.check.problem(path, f"{label}, column {column}: {row[column]!r}; recomputed from its other "
                                         f"columns and the period: {value!r}")

    def notification_row(self, row: dict, number: int, line: str) -> None:
        label = f"notification {row.get('notification_id')} (row {number})"
        if not self.in_period("notifications.json", label, "queued_at", row.get("queued_at")):
            self.check.problem("notifications.json", f"{label}: queued_at {row.get('queued_at')} is outside the period "
                                                     "(the selection: queued in the period)")

    def acceptance_row(self, row: dict, number: int, line: str) -> None:
        path, label = "risk_acceptances.json", f"{row.get('acceptance_ref')} (row {number})"
        approved_ok = self.in_period(path, label, "approved_at", row.get("approved_at"), before_end_only=True)
        ended = row.get("ended_at")
        ended_ok = ended is None or not self.in_period(path, label, "ended_at", ended, before_end_only=True) or \
            parse_time(ended) >= self.start
        record = {name: value for name, value in row.items() if name != "record_hash"
                  and not (name.endswith("_name") and name[:-5] in row)}  # names are added after the hash
        if "record_hash" in row and hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest() != row["record_hash"]:
            self.check.problem(path, f"{label}, column record_hash: {row['record_hash']!r} is not the SHA-256 of "
                                     "the row's other columns (without the names)")
        if not (approved_ok and ended_ok):
            self.check.problem(path, f"{label}: approved {row.get('approved_at')}, ended {ended}: not in force in the "
                                     "period (the selection: approved before its end and not ended before its start)")

    # -- packets and the README
    def check_packet(self, path: str, folder: str, key: str, fmt: str, text: str) -> None:
        stream = f"incident:{key_number(key, 'INC-')}"
        fold = self.incident_streams.get(stream)
        self.packets[folder].add(key)
        if fold is None:
            self.check.problem(path, f"{key} has no events in the bundle's incident event logs")
            return
        if fmt == "json":
            self._packet_json(path, key, fold, json.loads(text))
            return
        if fold.head not in text:
            self.check.problem(path, f"does not name the head of {stream} in the event log ({fold.head})")
        events = self.packet_events.get(f"{folder}/{key}") or []
        if fmt == "md" and self.layout >= 2:
            self.check.problem(path, f"a Markdown packet, which layout {self.layout} does not have (the HTML "
                                     "packet is the one to read)")
        elif fmt == "md":
            for event in events:
                times = f"{_shown(event.get('occurred_at'))} | {_shown(event.get('recorded_at'))}"
                start = f"| {event.get('seq')} | {times} |"
                if start not in text:
                    self.check.problem(path, f"timeline: no row for {stream} seq {event.get('seq')} "
                                             f"(expected a row starting {start!r})")
        else:
            # One row per event of the stream in the event log (seq 1 to its head), with its times and
            # its summary, compared with what the event log says for that seq.
            rows = {int(m.group(1)): m for m in HTML_TIMELINE_ROW.finditer(text.split("Timeline", 1)[-1])}
            timeline = fold.timeline or []
            for seq in range(1, fold.events + 1):
                found = rows.get(seq)
                occurred, recorded, summary = timeline[seq - 1] if seq <= len(timeline) else (None, None, None)
                if found is None or found.group(2) != occurred or found.group(3) != recorded:
                    self.check.problem(path, f"timeline: no row for {stream} seq {seq} with its times")
                elif one_line(_unescape(found.group(4))) != summary:
                    self.check.problem(path, f"timeline: {stream} seq {seq}: the text differs from the event log's "
                                             f"summary column")
            if len(rows) != fold.events:
                self.check.problem(path, f"timeline: {len(rows)} rows; the event log has {fold.events} events")

    def _packet_json(self, path: str, key: str, fold: IncidentStream, document) -> None:
        if not isinstance(document, dict):
            self.check.problem(path, "is not a JSON object")
            return
        folder = path.rsplit("/", 1)[0]
        events = document.get("events") if isinstance(document.get("events"), list) else []
        self.packet_events = {folder: events}  # only the current packet is kept
        integrity = document.get("integrity") if isinstance(document.get("integrity"), dict) else {}
        if integrity.get("stream") != fold.stream or integrity.get("head_hash") != fold.head:
            self.check.problem(path, f"integrity head {integrity.get('head_hash')} of {integrity.get('stream')} "
                                     f"differs from the event log's head {fold.head} for {fold.stream}")
        if integrity.get("generated_at") != self.manifest.get("generated_at"):
            self.check.problem(path, f"integrity.generated_at {integrity.get('generated_at')} differs from the "
                                     f"manifest's generated_at {self.manifest.get('generated_at')}")
        if self.layout >= 2:
            self._packet_event_log(path, folder, fold, document)
        elif len(events) != fold.events:
            self.check.problem(path, f"{len(events)} events; the event log has {fold.events} for {fold.stream}")
        for event in events:
            # Its own hash recomputed, and that hash, its id and actor name equal to the event log's:
            # then every field is the event log's.
            seq = event.get("seq") if isinstance(event, dict) else None
            try:
                same = event_hash(event) == event.get("hash") and set(event) == set(PACKET_EVENT_FIELDS)
            except (KeyError, TypeError, ValueError, AttributeError):
                same = False
            if not same or _digest(_unhashed(event)) != fold.digest_at(fold.packet_rows, seq):
                self.check.problem(path, f"event {fold.stream} seq {seq} differs from the event log")
        self._packet_fields(path, fold, document)

    def _packet_event_log(self, path: str, folder: str, fold: IncidentStream, document: dict) -> None:
        """Layout 2: the packet names the event-log rows that are its events (the whole stream, seq 1 to
        its head) instead of repeating them; the names must be those rows exactly."""
        reference = document.get("event_log") if isinstance(document.get("event_log"), dict) else {}
        events_file = "incident_events.json" if folder.startswith("incidents/") else "incidents_carried_over_events.json"
        expected = {"file": events_file, "stream": fold.stream, "events": fold.events, "first_seq": 1,
                    "last_seq": fold.events, "head_hash": fold.head}
        if "events" in document:
            self.check.problem(path, f"repeats the events (layout {self.layout} packets name their rows in "
                                     f"{events_file} instead)")
        for name, value in expected.items():
            if reference.get(name) != value:
                self.check.problem(path, f"event_log.{name} is {reference.get(name)!r}; the event log "
                                         f"{events_file} has {value!r} for {fold.stream}")
        if fold.stream not in self.e2_streams.get(events_file, ()):
            self.check.problem(path, f"its stream {fold.stream} has no events in {events_file}")

    def _packet_fields(self, path: str, fold: IncidentStream, document: dict) -> None:
        incident = document.get("incident") if isinstance(document.get("incident"), dict) else {}
        milestones = document.get("milestones") if isinstance(document.get("milestones"), dict) else {}
        expected = fold.expected_columns({"declared_at": milestones.get("declared_at")})
        pairs = [("incident", "severity_current", "severity_final"), *[("incident", name, name) for name in (
            "title", "type", "security", "private", "severity_initial", "status", "lead", "comms", "scribe", "declared_by",
            "detected_at", "channel_id", "customer_impact", "root_cause")]]
        pairs += [("milestones", name, name) for name in (
            "detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "closed_at", "minutes_to_declare",
            "minutes_to_acknowledge", "minutes_to_mitigate", "minutes_to_resolve")]
        for section, field, column in pairs:
            values = incident if section == "incident" else milestones
            if field in values and values[field] != expected.get(column):
                self.check.problem(path, f"{section}.{field}: {values[field]!r}; its events say {expected.get(column)!r}")

    def check_readme(self, text: str) -> None:
        period, manifest = self.manifest["period"], self.manifest
        claims = (f"# Vigil evidence bundle: {period.get('start')} to {period.get('end')} (end exclusive)",
                  f"Generated {manifest.get('generated_at')} by {manifest.get('generated_by')}.")
        for claim in claims:
            if claim not in text:
                self.check.problem("README.md", f"does not say {claim!r}, as the manifest does")

    # -- claims checked once every file has been read
    def after_all(self) -> None:
        self.segments_against_heads()
        for events_file, population in E2_FILES.items():
            if events_file not in self.present or population not in self.present:
                continue
            streams = {f"{STREAM_PREFIXES[prefix]}{key_number(key, prefix)}" for key in self.population[population]
                       for prefix in STREAM_PREFIXES if key_number(key, prefix) is not None}
            what = "an exercise" if population == "exercises.json" else "an incident"
            for stream in sorted(self.e2_streams[events_file] - streams):
                self.check.problem(events_file, f"stream {stream} is not {what} of {population}")
        for folder, population in PACKET_FOLDERS.items():
            if population in self.present:
                for key in sorted(self.population[population] - self.packets[folder]):
                    self.check.problem(f"{folder}/{key}/", f"{key} is in {population} but has no packet")
                for key in sorted(self.packets[folder] - self.population[population]):
                    self.check.problem(f"{folder}/{key}/", f"a packet for {key}, which is not in {population}")
        self.exercise_actions_listed()
        self.sequences()
        self.notes()
        self.generator()
        self.previous_bundle()
        self.names_in_summaries()
        self.register_scores()

    def register_scores(self) -> None:
        """Each register row's scores and levels follow from its likelihood and impact by its methodology
        (risk_methodology.json): the score by the formula, the level from the grid."""
        if self.methodologies is None:
            return
        for path, label, version, values in self.register:
            method = self.methodologies.get(version)
            if method is None:
                self.check.problem(path, f"{label}: methodology {version!r} is not in risk_methodology.json")
                continue
            for side in ("inherent", "residual"):
                likelihood, impact = values.get(f"{side}_likelihood"), values.get(f"{side}_impact")
                if not (isinstance(likelihood, int) and isinstance(impact, int)):
                    continue
                expected = {}
                if method.get("formula") == "product":
                    expected[f"{side}_score"] = likelihood * impact
                grid = method.get("grid")
                try:
                    expected[f"{side}_level"] = grid[likelihood - 1][impact - 1]
                except (TypeError, IndexError, KeyError):
                    self.check.problem(path, f"{label}: {side} likelihood {likelihood} and impact {impact} are off "
                                             f"the grid of methodology {version}")
                for column, value in expected.items():
                    if column in values and values[column] != value:
                        self.check.problem(path, f"{label}, column {column}: {values[column]!r}; methodology "
                                                 f"{version} gives {value!r}")

    def segments_against_heads(self) -> None:
        if self.heads is None:  # chain_heads missing: already reported
            return
        for path, segments in sorted(self.segments.items()):
            for segment in segments if isinstance(segments, list) else []:
                head = self.heads.get(segment.get("stream"))
                if head is None:
                    self.check.problem(path, f"stream {segment.get('stream')} has no row in chain_heads")
                elif not isinstance(segment.get("last_seq"), int) or not isinstance(head[0], int) or \
                        segment["last_seq"] > head[0] or (segment["last_seq"] == head[0]
                                                          and segment.get("head_hash") != head[1]):
                    self.check.problem(path, f"stream {segment.get('stream')} segment ends at seq "
                                             f"{segment.get('last_seq')} {segment.get('head_hash')}, which does not "
                                             f"agree with the stream head (seq {head[0]} {head[1]})")

    def sequences(self) -> None:
        """Each sequence's count, first, last and gaps recomputed from the rows it is about."""
        sources = {"INC-": "incidents.json", "RISK-": "risk_register_*.json", "ACT-": "action_items.json"}
        claimed = {s.get("prefix"): s for s in self.manifest.get("sequences") or [] if isinstance(s, dict)}
        for prefix, source in sources.items():
            if not any(p == source or (source.endswith("*.json") and p.startswith(source[:-6]) and p.endswith(".json"))
                       for p in self.present):
                continue
            where = f"{MANIFEST}: sequences {prefix}"
            claim = claimed.get(prefix)
            if claim is None:
                self.check.problems.append(f"{where}: missing (the bundle has {source})")
                continue
            numbers = sorted(self.keys[prefix])
            found = {"count": len(numbers), "first": f"{prefix}{numbers[0]}" if numbers else None,
                     "last": f"{prefix}{numbers[-1]}" if numbers else None, "rule": SEQUENCE_RULES[prefix]}
            for name, value in found.items():
                if claim.get(name) != value:
                    self.check.problems.append(f"{where}: {name} is {claim.get(name)!r}; {source} says {value!r}")
            self._gaps(where, source, prefix, claim, numbers)

    def _gaps(self, where: str, source: str, prefix: str, claim: dict, numbers: list) -> None:
        gaps = claim.get("gaps") if isinstance(claim.get("gaps"), list) else []
        covered: dict = {}
        for gap in gaps:
            low, high = key_number(gap.get("from"), prefix), key_number(gap.get("to"), prefix)
            if low is None or high is None or high < low or gap.get("count") != high - low + 1:
                self.check.problems.append(f"{where}: gap {gap.get('from')}..{gap.get('to')} is not a range of "
                                           f"{gap.get('count')} numbers")
                continue
            for number in range(low, high + 1):
                covered[number] = str(gap.get("reason", ""))
        inside = set(numbers)
        for number in sorted(inside & set(covered)):
            self.check.problems.append(f"{where}: {prefix}{number} is reported as a gap but is a row of {source}")
        if numbers:
            missing = [n for n in range(numbers[0], numbers[-1] + 1) if n not in inside and n not in covered]
            for number in missing:
                self.check.problems.append(f"{where}: {prefix}{number} is missing from {source} and from the gaps")
        highest = key_number(claim.get("highest_in_database"), prefix)
        counter = claim.get("counter_last")
        tail = [n for n, reason in covered.items() if reason.startswith("issued by the key counter")]
        if numbers and highest is not None and highest < numbers[-1]:
            self.check.problems.append(f"{where}: highest_in_database {claim.get('highest_in_database')} is below "
                                       f"the last row of {source} ({prefix}{numbers[-1]})")
        if isinstance(counter, int) and highest is not None and counter < highest:
            self.check.problems.append(f"{where}: counter_last {counter} is below highest_in_database {highest}")
        if isinstance(counter, int) and highest is not None and numbers and numbers[-1] == highest \
                and counter > highest and sorted(tail) != list(range(highest + 1, counter + 1)):
            self.check.problems.append(f"{where}: numbers {prefix}{highest + 1} to {prefix}{counter} were issued "
                                       "after the highest record but are not reported as a gap")

    def notes(self) -> None:
        notes = [n for n in self.manifest.get("notes") or [] if isinstance(n, dict)]
        has = {(n.get("section"), n.get("status")) for n in notes}
        open_period = self.generated_at is not None and self.end > self.generated_at
        if open_period != (("period", "open") in has):
            self.check.problems.append(
                f"{MANIFEST}: notes: " + ("no note that the period had not ended when the bundle was generated"
                                          if open_period else "a note says the period is open, but it ended "
                                          f"({self.manifest['period'].get('end')}) before the bundle was generated "
                                          f"({self.manifest.get('generated_at')})"))
        policy = "policy/config_versions.json"
        if policy in self.present and policy in self.rows:
            missing = self.rows[policy] == 0
            if missing != (("policy", "missing") in has):
                self.check.problems.append(f"{MANIFEST}: notes: " + (
                    f"no note that no configuration was recorded ({policy} is empty)" if missing else
                    f"a note says no configuration was recorded, but {policy} has {self.rows[policy]}"))

    def generator(self) -> None:
        generator = self.manifest.get("generator") or {}
        if not isinstance(generator, dict) or generator.get("name") != "vigil":
            self.check.problems.append(f"{MANIFEST}: generator {generator!r} is not vigil")
        if self.generated_at is not None and self.generated_at < self.start:
            self.check.problems.append(f"{MANIFEST}: generated_at {self.manifest.get('generated_at')} is before "
                                       "the period starts")


    def previous_bundle(self) -> None:
        """`previous_bundle` against the export receipts (`audit.bundle_exported`) in this bundle's own log:
        the receipt it names says the same, and no export recorded before this one is skipped."""
        claim = self.manifest.get("previous_bundle")
        where = f"{MANIFEST}: previous_bundle"
        cutoff = self.generated_at - RECEIPT_RACE if self.generated_at else None
        earlier = sorted((row for row in self.receipts.values() if cutoff is not None
                          and (parse_time(row.get("recorded_at")) or cutoff) < cutoff),
                         key=lambda row: (str(row.get("recorded_at")), str(row.get("seq"))))
        if not isinstance(claim, dict):
            if claim is not None:
                self.check.problems.append(f"{where}: {claim!r} is not an object")
            elif earlier:
                last = earlier[-1]
                self.check.problems.append(f"{where}: empty, but the audit log records an earlier export "
                                           f"({_receipt_label(last)})")
            return
        receipt = claim.get("receipt") if isinstance(claim.get("receipt"), dict) else {}
        named = self.receipts.get((receipt.get("stream"), receipt.get("seq")))
        if named is None:
            if not self.check.previous_given:  # with --previous, check_previous checks it against the file
                self.check.notices.append(
                    f"{where}: its receipt (stream {receipt.get('stream')} seq {receipt.get('seq')}, recorded "
                    f"{receipt.get('recorded_at')}) is not in this bundle's event log; check it against the earlier "
                    f"bundle with --previous")
        else:
            if named.get("hash") != receipt.get("hash"):
                self.check.problems.append(f"{where}: receipt hash {receipt.get('hash')}; the event log has "
                                           f"{named.get('hash')} at stream {receipt.get('stream')} seq {receipt.get('seq')}")
            data = named.get("data") if isinstance(named.get("data"), dict) else {}
            for field in RECEIPT_FIELDS:
                if claim.get(field) != data.get(field):
                    self.check.problems.append(f"{where}: {field} is {claim.get(field)!r}; its receipt in the event "
                                               f"log says {data.get(field)!r}")
            if "generated_by" in claim and claim["generated_by"] != named.get("actor"):
                self.check.problems.append(f"{where}: generated_by {claim['generated_by']!r}; its receipt was "
                                           f"recorded by {named.get('actor')!r}")
        skipped = [row for row in earlier if str(row.get("recorded_at")) > str(receipt.get("recorded_at"))]
        if skipped:
            self.check.problems.append(f"{where}: names the export recorded {receipt.get('recorded_at')}, but a later "
                                       f"one was recorded before this bundle was generated ({_receipt_label(skipped[-1])})")


def _receipt_label(row: dict) -> str:
    data = row.get("data") if isinstance(row.get("data"), dict) else {}
    return (f"{data.get('file')}, manifest sha256 {data.get('manifest_sha256')}, recorded {row.get('recorded_at')} "
            f"at stream {row.get('stream')} seq {row.get('seq')}")


def check_previous(check: Check, previous_path) -> None:
    """The bundle named as `previous_bundle` is the file at `previous_path`: its manifest's SHA-256, signing
    key, period and generation time are those the later bundle's manifest (and the receipt) claims."""
    claim = check.manifest.get("previous_bundle")
    where = f"{MANIFEST}: previous_bundle"
    if not isinstance(claim, dict):
        check.problems.append(f"{where}: empty, but {previous_path} was given as the bundle before this one")
        return
    with zipfile.ZipFile(previous_path) as archive:
        manifest, manifest_bytes = load_manifest(archive, previous_path)
        earlier = Check(previous_path, manifest)
        check_signature(archive, earlier, manifest_bytes)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    found = {"manifest_sha256": digest, "key_fingerprint": earlier.signed_by,
             "period_start": (manifest.get("period") or {}).get("start"),
             "period_end": (manifest.get("period") or {}).get("end"), "generated_at": manifest.get("generated_at")}
    for field, value in found.items():
        if claim.get(field) != value:
            check.problems.append(f"{where}: {field} is {claim.get(field)!r}; {previous_path} has {value!r}")
    check.problems.extend(f"{previous_path}: {problem}" for problem in earlier.problems)


# --- 8. The signature ----------------------------------------------------------------------------

def check_signature(archive: zipfile.ZipFile, check: Check, manifest_bytes: bytes) -> None:
    """manifest.sig: an Ed25519 signature over the exact bytes of manifest.json, with the public key
    and its fingerprint (SHA256:<hex of the 32 raw key bytes>). It proves the manifest is the one the
    key's holder signed; which installation holds the key is shown by where the fingerprint was
    published (the audit channel and the `audit` stream), which this file cannot see."""
    if SIGNATURE not in archive.namelist():
        message = "unsigned: the bundle has no manifest.sig, so nothing shows who produced the manifest"
        (check.problems if SIGNATURE_REQUIRED else check.notices).append(f"{SIGNATURE}: {message}")
        return
    try:
        document = json.loads(archive.read(SIGNATURE).decode("utf-8"))
        key = base64.b64decode(document["public_key"], validate=True)
        signature = base64.b64decode(document["signature"], validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        check.problem(SIGNATURE, f"cannot be read ({type(exc).__name__}: {exc})")
        return
    expected = {"format": SIGNATURE_FORMAT, "algorithm": "Ed25519", "signed_file": MANIFEST}
    for name, value in expected.items():
        if document.get(name) != value:
            check.problem(SIGNATURE, f"{name} is {document.get(name)!r}; expected {value!r}")
    fingerprint = "SHA256:" + hashlib.sha256(key).hexdigest()
    if document.get("key_fingerprint") != fingerprint:
        check.problem(SIGNATURE, f"key_fingerprint {document.get('key_fingerprint')} is not the fingerprint of "
                                 f"its public key ({fingerprint})")
    if not ed25519_verify(key, manifest_bytes, signature):
        check.problem(SIGNATURE, f"the signature by key {fingerprint} does not match {MANIFEST}: the manifest was "
                                 "changed after it was signed")
    elif check.ok:
        check.signed_by = fingerprint


# --- 9. Running it -------------------------------------------------------------------------------

# --- 9. Each event's sentence: the `summary` column, re-derived from the event's hashed data -------------
# Vigil writes every summary with these same functions (vigil_ir.exports.describe imports them), so
# the sentence is one rule kept in one place, and this file can re-derive it. User ids in a sentence
# are shown as "Name (U…)" by the people directory as it was at the event; the check allows any name
# there (the people directory and its history are what name people), but nothing else may differ.

INCIDENT_TYPE_LABELS = {"security": "Security", "availability": "Availability", "data_privacy": "Data / privacy",
                        "other": "Other"}  # vigil_ir.incidents.models.TYPES (a test binds the two)
# A Slack user id standing alone in a sentence (vigil_ir.people.ids; a test binds the two).
USER_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9@(])([UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{1,31})(?![A-Za-z0-9)|])")
NAME_UNKNOWN = "name unknown"


def when(value) -> str:
    """A time for people: `YYYY-MM-DD HH:MM:SS UTC` (exports keep full ISO form in their data)."""
    if value is None:
        return "not set"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


# Bookkeeping fields that change with every change: left out of "what changed".
_QUIET = {"version", "updated_at", "last_reviewed_at", "last_reviewed_by", "next_review_due"}


def _value(value: Any) -> str:
    if value in (None, "", [], {}):
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def changes_text(d: dict) -> str:
    changes = d.get("changes") if isinstance(d.get("changes"), dict) else {}
    parts = [f"{name.replace('_', ' ')} {_value(c.get('from'))} → {_value(c.get('to'))}"
             for name, c in changes.items() if name not in _QUIET and isinstance(c, dict)]
    return "; ".join(parts)


def _with_changes(text: str, d: dict) -> str:
    changed = changes_text(d)
    return f"{text} ({changed})" if changed else text


def _risk_created(e, d: dict) -> str:
    s = d.get("state") or {}
    return (f"created {d.get('key')} {_quote(s.get('title'))}: owner {s.get('owner')}, inherent "
            f"{s.get('inherent_likelihood')}×{s.get('inherent_impact')}, residual {s.get('residual_likelihood')}×"
            f"{s.get('residual_impact')}, treatment {s.get('treatment')}, first review due {s.get('next_review_due')}")


def _reviewed(e, d: dict) -> str:
    timing = "on time" if d.get("on_time") else f"{d.get('days_late')} days late" if d.get("days_late") else "late"
    approval = f"; needs approval ({', '.join(d['approval_reasons'])})" if d.get("approval_reasons") else ""
    return _with_changes(f"reviewed it ({d.get('review')}, {d.get('trigger')}, {timing}): outcome "
                         f"{d.get('outcome')}, rationale {_quote(d.get('rationale'))}{approval}", d)


def _action_created(e, d: dict) -> str:
    s = d.get("state") or {}
    parent = f" for {d['incident']}" if d.get("incident") else ""
    return (f"created action {d.get('key')}{parent}: {_quote(s.get('description'))}, owner {s.get('owner')}, due "
            f"{s.get('due_on') or 'not set'}")


def _action(verb: str) -> Callable:
    return lambda e, d: _with_changes(f"{verb} action {d.get('key')}", d) + _from_ticket(d)


def _from_ticket(d: dict) -> str:
    """A change that came from the action's ticket: which one, how it was learnt, the delivery."""
    if not d.get("ticket_key"):
        return ""
    delivery = f", delivery {d['delivery']}" if d.get("delivery") else ""
    return f", as its {d.get('tracker')} ticket {d.get('ticket_key')} is {d.get('ticket_state')} ({d.get('source')}{delivery})"


def _ticket(text: Callable) -> Callable:
    """A ticket event: `text(d, t)` with the ticket's state `t`."""
    return lambda e, d: text(d, d.get("ticket") or {})


def _person_first_seen(e, d: dict) -> str:
    state = "deactivated" if d.get("deactivated") else "active"
    return (f"first looked up {d.get('user_id')} in Slack: {_quote(d.get('real_name') or d.get('display_name') or d.get('name'))}"
            f", e-mail {d.get('email') or 'not shared'}, title {_quote(d.get('title'))}, {state}")


def _signed_off(e, d: dict) -> str:
    role = f" as {_quote(d.get('role'))}" if d.get("role") else ""
    report = (f"; report {d.get('report_file') or 'file not kept'} sha256 {d.get('report_sha256')}"
              if d.get("report_sha256") else "; no report file")
    comment = f"; comment {_quote(d.get('comment'))}" if d.get("comment") else ""
    what = "incident-response program review" if e.kind == "incidents.review_signed_off" else "risk assessment"
    return (f"{d.get('by')} signed off the {what} for {d.get('period_start')} to {d.get('period_end')} "
            f"(end exclusive){role}{report}{comment}")


_RECORD_SENTENCES: dict = {  # risks, actions, people, audit: merged into SENTENCES below
    "risk.created": _risk_created,
    "risk.review_opened": lambda e, d: (f"opened review {d.get('review')} ({d.get('trigger')} {d.get('trigger_ref')}), "
                                        f"due {d.get('due_on')}, reviewer {d.get('reviewer')}"),
    "risk.reviewed": _reviewed,
    "risk.review_rescheduled": lambda e, d: _with_changes(f"rescheduled the next review ({d.get('reason')})", d),
    "risk.approval_requested": lambda e, d: (f"asked for approval of review {d.get('review')} "
                                             f"({', '.join(d.get('reasons') or [])}) from "
                                             f"{', '.join(d.get('approvers') or []) or 'the approvers'}"),
    "risk.approval_granted": lambda e, d: _with_changes(
        f"approved review {d.get('review')}" + (f", creating acceptance {d['acceptance']}" if d.get("acceptance") else "")
        + (f"; comment {_quote(d.get('comment'))}" if d.get("comment") else ""), d),
    "risk.approval_rejected": lambda e, d: f"rejected review {d.get('review')}: {_quote(d.get('comment'))}",
    "risk.acceptance_expired": lambda e, d: _with_changes("let the risk acceptance expire", d),
    "risk.incident_linked": lambda e, d: _with_changes(f"linked incident {d.get('incident')}", d),
    "risk.reminder_sent": lambda e, d: (f"sent the {d.get('kind')} reminder for review {d.get('review')} (due "
                                        f"{d.get('due_on')}) to {d.get('recipient')}"),
    "risk.digest_sent": lambda e, d: "sent the weekly risk digest",
    "risk.treatment_action_added": lambda e, d: (f"added treatment action {d.get('action')}: "
                                                 f"{_quote(d.get('description'))}, owner {d.get('owner')}, due {d.get('due_on')}"),
    "risk.assessment_signed_off": _signed_off,
    "incidents.review_signed_off": _signed_off,
    "risk.signed_report_posted": lambda e, d: (f"sent the signed report (sha256 {d.get('sha256')}) to the signer "
                                               f"as Slack file {d.get('file_id')}"),
    "action.created": _action_created,
    "action.completed": _action("completed"),
    "action.cancelled": _action("cancelled"),
    "action.reopened": _action("reopened"),
    "action.status_changed": _action("changed the status of"),
    "action.reassigned": _action("reassigned"),
    "action.due_changed": _action("changed the due date of"),
    "action.ticket_set": _action("linked a ticket to"),
    "action.evidence_added": _action("added evidence to"),
    "action.updated": _action("updated"),
    "action.reminded": lambda e, d: (f"reminded {d.get('recipient')} of action {d.get('key')} ({d.get('label')}, due "
                                     f"{d.get('due_on')})"),
    "ticket.requested": _ticket(lambda d, t: (f"asked for a {t.get('tracker')} ticket for action {d.get('key')} in "
                                              f"{t.get('project')}" + (f" ({d['reason']})" if d.get("reason") else ""))),
    "ticket.created": _ticket(lambda d, t: (f"{'found' if d.get('adopted') else 'created'} {t.get('tracker')} ticket "
                                            f"{t.get('key')} ({t.get('url')}) for action {d.get('key')}")),
    "ticket.linked": _ticket(lambda d, t: f"linked {t.get('tracker')} ticket {t.get('key')} to action {d.get('key')}"),
    "ticket.synced": _ticket(lambda d, t: _with_changes(
        f"read {t.get('tracker')} ticket {t.get('key')} of action {d.get('key')}: {t.get('state_name') or t.get('state')}",
        {"changes": d.get("ticket_changes")}) + _from_ticket(d)),
    "ticket.closed": _ticket(lambda d, t: (f"closed {t.get('tracker')} ticket {t.get('key')} of action {d.get('key')}: "
                                           f"{t.get('state_name') or t.get('state')}")),
    "ticket.commented": _ticket(lambda d, t: (f"commented on {t.get('tracker')} ticket {t.get('key')} of action "
                                              f"{d.get('key')}: {_quote(d.get('comment'))}")),
    "ticket.divergence_flagged": _ticket(lambda d, t: (f"flagged that action {d.get('key')} ({d.get('action_status')}) "
                                                       f"and its ticket {t.get('key')} ({t.get('state')}) disagree "
                                                       f"({d.get('divergence')}) since {d.get('since')}")),
    "ticket.missing": _ticket(lambda d, t: (f"recorded that {t.get('tracker')} no longer finds ticket {t.get('key')} of "
                                            f"action {d.get('key')} ({d.get('source')}): {d.get('error')}")),
    "ticket.divergence_cleared": _ticket(lambda d, t: (f"recorded that action {d.get('key')} and its ticket "
                                                       f"{t.get('key')} agree again")),
    "person.first_seen": _person_first_seen,
    "person.changed": lambda e, d: _with_changes(f"recorded a change to {d.get('user_id')} from Slack", d),
    "config.recorded": lambda e, d: (f"recorded the configuration in force (sha256 {d.get('sha256')}; changed: "
                                     f"{', '.join(d.get('changed') or []) or 'first record'})"),
    "audit.bundle_exported": lambda e, d: (f"exported the evidence bundle {d.get('file')} for {d.get('period_start')} "
                                           f"to {d.get('period_end')} ({d.get('files')} files, manifest sha256 "
                                           f"{d.get('manifest_sha256')})"),
    "audit.sample_drawn": lambda e, d: (f"drew a sample of {d.get('n')} {d.get('population')} from "
                                        f"{d.get('population_size')} for {d.get('period_start')} to {d.get('period_end')} "
                                        f"(seed {d.get('seed')}; population sha256 {d.get('population_digest')})"),
    "audit.token_created": lambda e, d: f"created auditor token {_quote(d.get('name'))}, expires {d.get('expires_at')}",
    "audit.token_revoked": lambda e, d: f"revoked auditor token {_quote(d.get('name'))}",
    "audit.dashboard_signed_in": lambda e, d: (f"signed in to the dashboard ({d.get('method')}"
                                               + (f", as {d['role']}" if d.get("role") else "") + ")"),
    "audit.dashboard_access": lambda e, d: (f"read {d.get('path')}" + (f"?{d['query']}" if d.get("query") else "")
                                            + (f" ({', '.join(f'{k}={v}' for k, v in d['params'].items())})"
                                               if d.get("params") else "")),
    "audit.dashboard_access_summarised": lambda e, d: (f"read {d.get('further_views')} further dashboard pages from "
                                                       f"{d.get('window_start')} to {d.get('window_end')} (above the "
                                                       f"{d.get('limit')} recorded one by one)"),
    "audit.dashboard_signed_out": lambda e, d: f"signed out of the dashboard (session {d.get('session_id')})",
    "audit.dashboard_session_revoked": lambda e, d: (f"ended dashboard session {d.get('session_id')} of "
                                                     f"{d.get('user') or 'auditor token ' + str(d.get('token_id'))}"),
    "audit.dashboard_sign_in_failed": lambda e, d: (f"recorded a failed dashboard sign-in from {d.get('address')} "
                                                    f"(token {d.get('token_prefix')}…, {d.get('reason')}); further "
                                                    f"failures until {d.get('window_end')} are counted, not listed"),
    "audit.signing_key_created": lambda e, d: (f"created the bundle signing key {d.get('fingerprint')} "
                                               f"({d.get('algorithm')})"),
    "audit.signing_key_rotated": lambda e, d: (f"rotated the bundle signing key to {d.get('fingerprint')} "
                                               f"({d.get('algorithm')}), replacing {d.get('previous_fingerprint')}"
                                               + (f": {_quote(d.get('reason'))}" if d.get("reason") else "")),
    "audit.signing_key_published": lambda e, d: (f"posted the signing key {d.get('fingerprint')} to {d.get('channel')} "
                                                 f"({d.get('permalink')})"),
    "audit.witness_published": lambda e, d: (f"posted the chain heads' digest {d.get('digest')} as at {when(d.get('cutoff'))} "
                                             f"({d.get('streams')} streams, {d.get('events')} events) to "
                                             f"{d.get('channel')} ({d.get('permalink')})"),
}


def _quote(text: Any) -> str:
    return f'"{text}"' if text not in (None, "") else "(empty)"


def _declared(e, d: dict) -> str:
    kind = INCIDENT_TYPE_LABELS.get(d.get("type"), d.get("type"))
    security = (", security incident" if d.get("security") else "") + (", private" if d.get("private") else "")
    text = (f"declared {d.get('key', 'the incident')} {_quote(d.get('title'))} "
            f"({d.get('severity')}, {kind}{security}); detected {when(d.get('detected_at'))}")
    return text + (f"; description: {_quote(d['description'])}" if d.get("description") else "")


def _role(e, d: dict) -> str:
    previous = f"previously {d['from']}" if d.get("from") else "previously unassigned"
    return f"assigned the {d.get('role')} role to {d.get('to')} ({previous})"


_GRANTED_HOW = {"declared": "as its declarer", "invite": "by invitation", "joined_channel": "on joining its channel"}


def _access_granted(e, d: dict) -> str:
    how = (f"with the {d.get('role')} role" if d.get("via") == "role" else
           f"as a member of the security group {d.get('group')}" if d.get("via") == "security_group" else
           _GRANTED_HOW.get(d.get("via"), f"({d.get('via')})"))
    return f"granted {d.get('user')} access to the private incident {how}"


def _access_revoked(e, d: dict) -> str:
    grant = f"granted by {d.get('granted_by')} ({d.get('granted_via')}) at {when(d.get('granted_at'))}"
    if d.get("via") == "left_channel":
        return f"left the private incident's channel, which ended the access of {d.get('user')} ({grant})"
    return f"removed {d.get('user')} from the private incident, ending their access ({grant})"


def _corrected(e, d: dict) -> str:
    return (f"corrected note #{e.corrects} to {_quote(d.get('text'))} "
            f"(original, still in the log: {_quote(d.get('original_text'))})")


def _update(e, d: dict) -> str:
    due = f"; next update due {when(d['next_update_due'])}" if d.get("next_update_due") else ""
    return f"posted an update (status {d.get('status')}): {_quote(d.get('summary'))}{due}"


def _message(e, d: dict) -> str:
    text = f"added a message by {d.get('author') or 'unknown author'} to the timeline: {_quote(d.get('text'))}"
    if d.get("permalink"):
        text += f" ({d['permalink']})"
    return text + (f" via {d['via']}" if d.get("via") else "")


def _closed(e, d: dict) -> str:
    follow_ups = "; ".join(_quote(item) for item in d.get("follow_ups") or []) or "none"
    text = (f"closed the incident. Customer impact: {_quote(d.get('customer_impact'))}. "
            f"Root cause: {_quote(d.get('root_cause'))}. Lessons learned: {_quote(d.get('lessons_learned'))}. "
            f"Follow-ups: {follow_ups}.")
    if d.get("open_items"):
        text += (f" Closed with items still open ({'; '.join(str(item) for item in d['open_items'])}), "
                 f"override reason: {_quote(d.get('override_reason'))}.")
    if d.get("approved_by"):
        text += f" Closing was requested by {d.get('requested_by')} and approved by {d['approved_by']}."
    return text


def _close_requested(e, d: dict) -> str:
    return (f"asked to close the incident (a second person must approve). Customer impact: "
            f"{_quote(d.get('customer_impact'))}. Root cause: {_quote(d.get('root_cause'))}.")


def _members_changed(e, d: dict) -> str:
    name = d.get("handle") or d.get("group")
    if d.get("first_seen"):
        return f"saw the members of user group {name} for the first time: {', '.join(d.get('members') or []) or 'none'}"
    return (f"saw user group {name} change: added {', '.join(d.get('added') or []) or 'no one'}, "
            f"removed {', '.join(d.get('removed') or []) or 'no one'}")


def _policy(e, d: dict) -> str:
    rules = "; ".join(f"{action}: {', '.join(roles)}" for action, roles in sorted((d.get("rules") or {}).items()))
    roles = "; ".join(f"{role} = {', '.join(subjects) or 'none'}" for role, subjects in sorted((d.get("roles") or {}).items()))
    return (f"recorded the permissions policy in force (sha256 {d.get('sha256')}). Roles: {roles}. Rules: {rules}. "
            f"Closing needs a second person for: {', '.join(d.get('close_approval') or []) or 'none'}")


def _step(verb: str) -> Callable:
    def sentence(e, d: dict) -> str:
        text = f"{verb} playbook step {_quote(d.get('title'))} ({d.get('playbook_id')} v{d.get('version')})"
        if d.get("evidence"):
            text += f"; evidence: {_quote(d['evidence'])}"
        if d.get("reason"):
            text += f"; reason: {_quote(d['reason'])}"
        if "to" in d:
            text += f" to {d['to']}"
        if e.corrects:
            text += f" (undoes event id {e.corrects}, which stays in the log)"
        return text
    return sentence


def _attached(e, d: dict) -> str:
    skipped = f"; not applicable: {', '.join(d['not_applicable'])}" if d.get("not_applicable") else ""
    return (f"attached playbook {_quote(d.get('title'))} ({d.get('playbook_id')} v{d.get('version')}, "
            f"sha256 {d.get('sha256')}) with {len(d.get('steps') or [])} steps{skipped}")


def _deadline(state: str) -> Callable:
    return lambda e, d: f"deadline {_quote(d.get('label'))} {state} (due {when(d.get('due_at'))})"


def _pir_completed(e, d: dict) -> str:
    timing = "on time" if d.get("on_time") else f"late (was due {when(d.get('due_at'))})"
    return (f"recorded the post-incident review held {when(d.get('held_at'))} with "
            f"{', '.join(d.get('attendees') or []) or 'no attendees'} ({timing}). Root cause: {_quote(d.get('root_cause'))}. "
            f"Response plan change needed: {'yes' if d.get('plan_change_needed') else 'no'}.")


def _alert_sentence(verb: str):
    return lambda e, d: (f"alert {verb}: {_quote(d.get('title'))} ({d.get('severity')}, {d.get('source')} "
                         f"{d.get('fingerprint')})")


def _page_sentence(verb: str):
    def sentence(e, d: dict) -> str:
        named = d.get("responder_user") or d.get("responder") or d.get("responder_email")
        return f"page #{d.get('page_id')} {verb}{f' by {named}' if named else ''} ({d.get('dedup_key')})"
    return sentence


_ALERT_SENTENCES: dict = {  # alerts linked to an incident, and pages (docs/integrations.md)
    "incident.alerts_linked": lambda e, d: (
        f"{'declared it from' if d.get('how') == 'declared' else 'attached'} {d.get('alerts')} {d.get('source')} "
        f"alert(s) {_quote(d.get('title'))} ({d.get('severity')}, first fired {when(d.get('first_started_at'))})"
        + (f" by rule {d['rule']}" if d.get("rule") else "")),
    "incident.alert_fired": _alert_sentence("fired"),
    "incident.alert_refired": _alert_sentence("fired again"),
    "incident.alert_resolved": _alert_sentence("resolved"),
    "incident.detected_at_changed": lambda e, d: (f"moved the detection time from {when(d.get('from'))} to "
                                                  f"{when(d.get('to'))} ({d.get('source')})"),
    "page.requested": lambda e, d: (f"paged {d.get('target')} through {d.get('provider')}: {_quote(d.get('message'))} "
                                    f"(page #{d.get('page_id')}, {d.get('dedup_key')})"),
    "page.triggered": _page_sentence("triggered"),
    "page.acknowledged": _page_sentence("acknowledged"),
    "page.escalated": _page_sentence("escalated"),
    "page.resolve_requested": lambda e, d: f"asked to resolve page #{d.get('page_id')} ({d.get('because')})",
    "page.resolved": _page_sentence("resolved"),
    # An alert group's own stream (alert_group:<n>): alerts come in, and triage decides what they are.
    "alert_group.opened": lambda e, d: (f"opened an alert group for {_quote(d.get('title'))} ({d.get('severity')}, "
                                        f"{d.get('source')} {d.get('group_key')})"),
    "alert.fired": _alert_sentence("fired"),
    "alert.refired": _alert_sentence("fired again"),
    "alert.resolved": _alert_sentence("resolved"),
    "alert_group.declared": lambda e, d: (f"declared {d.get('incident')} from the alerts"
                                          + (f" by rule {d['rule']}" if d.get("rule") else "")),
    "alert_group.attached": lambda e, d: f"attached the alerts to {d.get('incident')}",
    "alert_group.dismissed": lambda e, d: f"dismissed the alerts: {_quote(d.get('reason'))}",
    "integration.unmatched": lambda e, d: (
        f"kept a {d.get('what')} notification about something Vigil has no record of ("
        + ", ".join(f"{name} {d[name]}" for name in ("key", "fingerprint", "action", "status", "title", "responder",
                                                      "reference", "delivery") if d.get(name) not in (None, ""))
        + ")"),
}


SENTENCES: dict = {  # event kind → its sentence (the subject, the actor, is its own column)
    "incident.update_reminded": lambda e, d: f"reminded {d.get('reminded') or 'the channel'} that a status update "
                                             f"was due at {when(d.get('due_at'))}",
    "incident.update_snoozed": lambda e, d: f"snoozed the update reminder until {when(d.get('until'))}",
    "incident.role_reminded": lambda e, d: f"reminded {d.get('reminded')} that no one holds the {d.get('role')} role",
    "pir.scheduled": lambda e, d: (f"scheduled the post-incident review, due {when(d.get('due_at'))}, facilitator "
                                   f"{d.get('facilitator') or 'not set'}" if d.get("required") else
                                   "noted that a post-incident review is optional at this severity"),
    "pir.reminded": lambda e, d: f"reminded {d.get('reminded')} that the post-incident review is due "
                                 f"({d.get('step')}, due {when(d.get('due_at'))})",
    "pir.completed": _pir_completed,
    "pir.document_posted": lambda e, d: f"posted the review document {d.get('name')} (sha256 {d.get('sha256')})",
    "playbook.attached": _attached,
    "playbook.step_completed": _step("completed"),
    "playbook.step_skipped": _step("skipped"),
    "playbook.step_assigned": _step("assigned"),
    "playbook.step_reopened": _step("reopened"),
    "playbook.step_overdue_reminded": lambda e, d: f"reminded {d.get('reminded') or 'the channel'} that step "
                                                   f"{d.get('step_id')} is overdue (due {when(d.get('due_at'))})",
    "playbook.deadline_started": _deadline("started"),
    "playbook.deadline_met": _deadline("met"),
    "playbook.deadline_missed": _deadline("missed"),
    "playbook.deadline_decided": lambda e, d: (f"ended deadline {_quote(d.get('label'))} by a decision: {d.get('decision')} "
                                               f"(reason: {_quote(d.get('reason'))}; was due {when(d.get('due_at'))})"),
    "playbook.deadline_reminded": lambda e, d: f"reminded that {d.get('percent')}% of the time for deadline "
                                               f"{d.get('deadline_id')} has passed (due {when(d.get('due_at'))})",
    "incident.declared": _declared,
    "incident.status_changed": lambda e, d: f"changed status from {d.get('from')} to {d.get('to')}",
    "incident.severity_changed": lambda e, d: f"changed severity from {d.get('from')} to {d.get('to')}",
    "incident.security_changed": lambda e, d: (f"{'marked it a security incident' if d.get('to') else 'marked it not a security incident'}"
                                               f" (reason: {_quote(d.get('reason'))})"),
    "incident.role_assigned": _role,
    "incident.note_added": lambda e, d: f"added note #{e.id}: {_quote(d.get('text'))}",
    "incident.note_corrected": _corrected,
    "incident.update_posted": _update,
    "incident.message_added": _message,
    "incident.channel_created": lambda e, d: f"created channel #{d.get('name')} ({d.get('channel')})",
    "incident.summary_posted": lambda e, d: f"posted the incident summary in {d.get('channel')} (ts {d.get('ts')})",
    "incident.announcement_posted": lambda e, d: f"announced the incident in {d.get('channel')} (ts {d.get('ts')})",
    "incident.closed": _closed,
    "incident.close_requested": _close_requested,
    "incident.close_approved": lambda e, d: f"approved closing the incident, as asked by {d.get('requested_by')}",
    "incident.close_refused": lambda e, d: (f"refused closing the incident, as asked by {d.get('requested_by')}"
                                            + (f": {_quote(d['reason'])}" if d.get("reason") else "")),
    "incident.lead_requested": lambda e, d: f"asked {d.get('lead')} to hand over the lead",
    "incident.lead_request_accepted": lambda e, d: f"accepted handing the lead to {d.get('requested_by')}",
    "incident.lead_request_declined": lambda e, d: f"declined handing the lead to {d.get('requested_by')}",
    "incident.access_granted": _access_granted,
    "incident.access_revoked": _access_revoked,
    "permissions.policy_in_force": _policy,
    "permissions.group_members_changed": _members_changed,
    **_RECORD_SENTENCES,  # risks, actions, people, audit
    **_ALERT_SENTENCES,  # alerts and pages
}


def describe(event) -> str:
    """One sentence for `event` (anything with kind, data, id and corrects); unknown kinds (or odd
    data) fall back to kind + compact data."""
    data = event.data if isinstance(event.data, dict) else {}
    describer = SENTENCES.get(event.kind)
    if describer is not None:
        try:
            return describer(event, data)
        except (KeyError, TypeError, AttributeError):
            pass  # data not in the shape this kind usually has: show it raw rather than fail
    return f"{event.kind} {canonical_json(event.data)}"


class ExportedEvent:
    """An event row of the bundle, as `describe` reads it."""

    __slots__ = ("kind", "data", "id", "corrects")

    def __init__(self, row: dict):
        self.kind, self.data, self.id, self.corrects = row.get("kind"), row.get("data"), row.get("id"), row.get("corrects")


def names_in_summary(sentence: str, shown: str) -> list | None:
    """None unless `shown` is `sentence` with each user id in it shown as "<a name> (U…)",
    "U… (name unknown)" or left alone; else the (user id, name) pairs it shows. Matched part by
    part (no regex per row: a bundle has a summary per event), backtracking only over where a name ends."""
    if shown == sentence:  # every user id left alone (the first way tried below): no names
        return []
    parts = USER_ID_IN_TEXT.split(sentence)
    if len(parts) == 1:
        return [] if shown == sentence else None
    return _labelled(parts, 0, shown, 0)


def _labelled(parts: list, index: int, shown: str, position: int) -> list | None:
    text = parts[index]
    if not shown.startswith(text, position):
        return None
    position += len(text)
    if index == len(parts) - 1:
        return [] if position == len(shown) else None
    user_id = parts[index + 1]
    for label in (f"{user_id} ({NAME_UNKNOWN})", user_id):
        if shown.startswith(label, position):
            rest = _labelled(parts, index + 2, shown, position + len(label))
            if rest is not None:
                return rest
    suffix = f" ({user_id})"
    end = shown.find(suffix, position + 1)
    while end != -1:
        rest = _labelled(parts, index + 2, shown, end + len(suffix))
        if rest is not None:
            return [(user_id, shown[position:end]), *rest]
        end = shown.find(suffix, end + 1)
    return None


def check_bundle(path, *, signature: bool = True, previous=None) -> Check:
    """Check the bundle at `path`; raises BundleError when it cannot be read as a bundle at all.
    `signature=False` leaves manifest.sig to the caller (`vigil verify --bundle` checks it with
    `cryptography` and confirms whose key made it). `previous`: the bundle exported before this one,
    which the manifest's previous_bundle must describe."""
    previous_archive = None
    if previous is not None:
        try:
            previous_archive = zipfile.ZipFile(previous)
        except (OSError, zipfile.BadZipFile):
            raise BundleError(f"{previous} (given with --previous) cannot be read as a zip file") from None
        previous_archive.close()
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BundleError(f"{path} is a folder, not a zip file") from None
    except zipfile.BadZipFile:
        raise BundleError(f"{path} is not a zip file") from None
    with archive:
        manifest, manifest_bytes = load_manifest(archive, path)
        check = Check(path, manifest)
        check.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
        check.previous_given = previous is not None
        if signature:
            check_signature(archive, check, manifest_bytes)
        Bundle(archive, check).run()
    if previous is not None:
        check_previous(check, previous)
    return check


def report(path, out, err, previous=None) -> int:
    """Print the outcome (`out`/`err` take one line each) and return the exit code: 0 OK, 1 otherwise."""
    try:
        check = check_bundle(path, previous=previous)
    except BundleError as exc:
        err(f"BROKEN: {exc}")
        return 1
    except (OSError, zipfile.BadZipFile, EOFError) as exc:  # e.g. a truncated zip, a corrupt member
        err(f"BROKEN: {path}: cannot be read ({exc})")
        return 1
    manifest = check.manifest
    if check.ok:
        period, signed = manifest.get("period", {}), f"; signed by {check.signed_by}" if check.signed_by else ""
        out(f"OK: {path}: {check.files} files match the manifest; {check.segments} chain segments "
            f"({check.events} events) re-verified; every claim of the manifest checked; period {period.get('start')} "
            f"to {period.get('end')}; heads digest {manifest['event_log']['heads'].get('digest')}; "
            f"manifest sha256:{check.manifest_sha256}{signed}")
        for notice in check.notices:
            err(f"NOTE: {notice}")
        return 0
    for notice in check.notices:
        err(f"NOTE: {notice}")
    for problem in check.problems[:SHOWN]:
        err(f"BROKEN: {problem}")
    if len(check.problems) > SHOWN:
        err(f"... and {len(check.problems) - SHOWN} more")
    err(f"{path}: {len(check.problems)} problem(s); the bundle does not match its manifest.")
    return 1


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 0
    previous = None
    if len(args) == 3 and args[1] == "--previous":
        previous = args[2]
    elif len(args) != 1:
        print("usage: python verify.py BUNDLE.zip [--previous EARLIER_BUNDLE.zip]", file=sys.stderr)
        return 2
    return report(args[0], print, lambda line: print(line, file=sys.stderr), previous)


if __name__ == "__main__":
    sys.exit(main())
