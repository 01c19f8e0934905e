"""Signing bundles the way a forger would: with the installation's own key (stolen) or with another one."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigil_ir.signing import keyfile
from vigil_ir.exports.signature import SignatureFile


def installation_key() -> Ed25519PrivateKey:
    """This test's installation key (tests/conftest.py::signing_key_file), as a thief of the key file has it."""
    key = keyfile.load(Path(os.environ["VIGIL_SIGNING_KEY_FILE"]))
    assert key is not None, "no bundle was exported yet: the key is created on first use"
    return key


def signature_for(manifest: bytes, key: Ed25519PrivateKey | None = None) -> bytes:
    """`manifest.sig` for `manifest` by `key` (default: the installation's key)."""
    key = key or installation_key()
    return SignatureFile(public_key=keyfile.public_bytes(key), signature=key.sign(manifest)).render()
