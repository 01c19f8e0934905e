"""The bundle signature file, `manifest.sig`: the contract every checker verifies (standard library only here).

An evidence bundle's zip holds, beside `manifest.json`, a JSON object:

    {"format": "vigil-signature/1",
     "algorithm": "Ed25519",
     "signed_file": "manifest.json",
     "public_key": "<base64 of the 32 raw public key bytes>",
     "key_fingerprint": "SHA256:<lowercase hex SHA-256 of the 32 raw public key bytes>",
     "signature": "<base64 of the 64-byte Ed25519 signature over the exact bytes of manifest.json>"}

Base64 is the standard alphabet with padding (RFC 4648 §4). Like `manifest.json`, `manifest.sig` is
not listed in the manifest's file list (it signs the manifest, so it cannot be hashed inside it).
A valid signature proves the manifest, and through its SHA-256s every file, is what the holder of
that key signed; whose key it is comes from outside the bundle (docs/audit-evidence.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass

NAME = "manifest.sig"
FORMAT = "vigil-signature/1"
ALGORITHM = "Ed25519"
SIGNED_FILE = "manifest.json"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
FINGERPRINT = re.compile(r"^SHA256:[0-9a-f]{64}$")
FIELDS = ("format", "algorithm", "signed_file", "public_key", "key_fingerprint", "signature")


class SignatureFileError(ValueError):
    """`manifest.sig` is not a well-formed signature file; the message says what is wrong."""


def fingerprint(public_key: bytes) -> str:
    """`SHA256:<hex>` of the 32 raw public key bytes: how a key is named everywhere (audit channel, events, CLI)."""
    return "SHA256:" + hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class SignatureFile:
    public_key: bytes
    signature: bytes

    @property
    def key_fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def render(self) -> bytes:
        document = {"format": FORMAT, "algorithm": ALGORITHM, "signed_file": SIGNED_FILE,
                    "public_key": base64.b64encode(self.public_key).decode("ascii"),
                    "key_fingerprint": self.key_fingerprint,
                    "signature": base64.b64encode(self.signature).decode("ascii")}
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def _base64(document: dict, name: str, size: int) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        raise SignatureFileError(f"{name} is missing or not a string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureFileError(f"{name} is not base64") from None
    if len(raw) != size:
        raise SignatureFileError(f"{name} decodes to {len(raw)} bytes; an Ed25519 {name.replace('_', ' ')} has {size}")
    return raw


def parse(data: bytes) -> SignatureFile:
    """Read `manifest.sig`; SignatureFileError naming the first thing that is wrong with it."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SignatureFileError("it is not JSON") from None
    if not isinstance(document, dict):
        raise SignatureFileError("it is not a JSON object")
    for name, expected in (("format", FORMAT), ("algorithm", ALGORITHM), ("signed_file", SIGNED_FILE)):
        if document.get(name) != expected:
            raise SignatureFileError(f"{name} is {document.get(name)!r}, expected {expected!r}")
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise SignatureFileError(f"unexpected field(s) {', '.join(unknown)}")
    public_key = _base64(document, "public_key", PUBLIC_KEY_BYTES)
    signature = _base64(document, "signature", SIGNATURE_BYTES)
    claimed = document.get("key_fingerprint")
    if claimed != fingerprint(public_key):
        raise SignatureFileError(f"key_fingerprint {claimed!r} is not the fingerprint of public_key "
                                 f"({fingerprint(public_key)})")
    return SignatureFile(public_key=public_key, signature=signature)
