"""The standalone checker's Ed25519 verification (RFC 8032 5.1.7, integers and hashlib.sha512 only)
and its reading of manifest.sig: RFC 8032 test vectors, signatures made by `cryptography`, forgeries."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil_ir.exports.bundle.checker import L, check_bundle, ed25519_verify
from tests.test_bundle import export, read, seed
from tests.test_bundle_claims import assert_broken, forge

# RFC 8032 section 7.1: (public key, message, signature), TEST 1, 2, 3 and SHA(abc).
RFC_VECTORS = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


@pytest.mark.parametrize(("key", "message", "signature"), RFC_VECTORS)
def test_the_rfc_8032_vectors_verify_and_any_change_fails(key, message, signature):
    key, message, signature = bytes.fromhex(key), bytes.fromhex(message), bytes.fromhex(signature)
    assert ed25519_verify(key, message, signature)
    assert not ed25519_verify(key, message + b"x", signature)
    for index in (0, 31, 32, 63):  # R and S, first and last bytes
        bent = bytearray(signature)
        bent[index] ^= 0x01
        assert not ed25519_verify(key, message, bytes(bent))
    bent_key = bytearray(key)
    bent_key[0] ^= 0x01
    assert not ed25519_verify(bytes(bent_key), message, signature)


def test_a_non_canonical_s_and_malformed_inputs_are_refused():
    key, message, signature = (bytes.fromhex(part) for part in RFC_VECTORS[0])
    s = int.from_bytes(signature[32:], "little")
    assert not ed25519_verify(key, message, signature[:32] + (s + L).to_bytes(32, "little"))  # S >= L
    assert not ed25519_verify(key, message, signature[:63])
    assert not ed25519_verify(key[:31], message, signature)
    assert not ed25519_verify(b"\xff" * 32, message, signature)  # y >= p: no point


cryptography = pytest.importorskip("cryptography")
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@settings(max_examples=25, deadline=None)
@given(seed_bytes=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_signatures_made_by_cryptography_verify(seed_bytes, message):
    private = Ed25519PrivateKey.from_private_bytes(seed_bytes)
    signature = private.sign(message)
    assert ed25519_verify(raw_public(private), message, signature)
    other = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed_bytes).digest())
    assert not ed25519_verify(raw_public(other), message, signature)


def signature_file(private: Ed25519PrivateKey, manifest: bytes, *, key: bytes | None = None) -> bytes:
    public = key or raw_public(private)
    return json.dumps({"format": "vigil-signature/1", "algorithm": "Ed25519", "signed_file": "manifest.json",
                       "public_key": base64.b64encode(public).decode(),
                       "key_fingerprint": "SHA256:" + hashlib.sha256(public).hexdigest(),
                       "signature": base64.b64encode(private.sign(manifest)).decode()}).encode()


@pytest.fixture
def bundle(db, tmp_path) -> Path:
    seed(db)
    return export(db, tmp_path)


def signed(bundle: Path, target: Path, sig: bytes) -> Path:
    with zipfile.ZipFile(bundle) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename != "manifest.sig":
                new.writestr(info, old.read(info.filename))
        new.writestr("manifest.sig", sig)
    return target


def test_a_signed_bundle_passes_and_names_the_key(bundle, tmp_path):
    private = Ed25519PrivateKey.generate()
    path = signed(bundle, tmp_path / "s.zip", signature_file(private, read(bundle, "manifest.json")))
    check = check_bundle(path)
    assert check.ok, check.problems
    assert check.signed_by == "SHA256:" + hashlib.sha256(raw_public(private)).hexdigest() and not check.notices


def test_a_bundle_signed_with_another_key_than_it_names_fails_in_both_checkers(bundle, tmp_path):
    private, impostor = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    forged = signed(bundle, tmp_path / "s.zip",
                    signature_file(impostor, read(bundle, "manifest.json"), key=raw_public(private)))
    named = "SHA256:" + hashlib.sha256(raw_public(private)).hexdigest()
    assert_broken(bundle, tmp_path, forged, f"manifest.sig: the signature by key {named} does not match "
                                            "manifest.json: the manifest was changed after it was signed")


def test_an_edited_manifest_fails_the_signature_and_names_the_claim_too(bundle, tmp_path):
    private = Ed25519PrivateKey.generate()
    sig = signature_file(private, read(bundle, "manifest.json"))

    def more(document):
        document["sequences"][0]["count"] = 4
    edited = forge(bundle, tmp_path / "e.zip", manifest=more)
    forged = signed(edited, tmp_path / "s.zip", sig)
    named = "SHA256:" + hashlib.sha256(raw_public(private)).hexdigest()
    assert_broken(bundle, tmp_path, forged, f"manifest.sig: the signature by key {named} does not match manifest.json: "
                                            "the manifest was changed after it was signed",
                  "manifest.json: sequences INC-: count is 4; incidents.json says 3")


def test_a_wrong_fingerprint_is_reported(bundle, tmp_path):
    private = Ed25519PrivateKey.generate()
    document = json.loads(signature_file(private, read(bundle, "manifest.json")))
    document["key_fingerprint"] = "SHA256:" + "0" * 64
    path = signed(bundle, tmp_path / "s.zip", json.dumps(document).encode())
    assert any(p.startswith("manifest.sig: key_fingerprint SHA256:000") for p in check_bundle(path).problems)
