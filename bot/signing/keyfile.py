"""The private signing key on disk: a PKCS8 PEM file only its owner can read.

The key is kept outside the database on purpose: someone who can write to the database (or read a
backup of it) must not be able to sign a bundle. A file that the group or others can read or write
is refused rather than used, since anyone who could read it could sign in Vigil's name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MODE = 0o600


class KeyFileError(Exception):
    """The key file cannot be used; the message names the file, the problem and the fix."""


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load(path: Path) -> Ed25519PrivateKey | None:
    """The key in `path`, or None when there is no file there."""
    try:
        # A symbolic link is followed (a mounted secret is one); the mode checked is the file's own.
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyFileError(f"VIGIL_SIGNING_KEY_FILE={path}: cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"VIGIL_SIGNING_KEY_FILE={path} is not a regular file")
        if os.name == "posix" and info.st_mode & 0o077:
            raise KeyFileError(f"VIGIL_SIGNING_KEY_FILE={path} can be read or written by others (mode "
                               f"{stat.S_IMODE(info.st_mode):04o}): anyone who can read it can sign bundles in "
                               f"this installation's name. Restrict it (chmod 600 {path}); if others may have read "
                               "it, rotate the key (`vigil signing-key rotate`).")
        data = handle.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"VIGIL_SIGNING_KEY_FILE={path} does not hold an unencrypted PKCS8 PEM private key "
                           f"({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"VIGIL_SIGNING_KEY_FILE={path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _write_new(path: Path, key: Ed25519PrivateKey) -> None:
    """Write `key` to `path`, which must not exist (O_EXCL), readable by the owner only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), MODE)
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyFileError(f"VIGIL_SIGNING_KEY_FILE={path}: cannot create the key file ({exc.strerror}); "
                           "point VIGIL_SIGNING_KEY_FILE at a folder Vigil may write") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_pem(key))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def create(path: Path) -> Ed25519PrivateKey:
    """A new key written to `path`; when another process created the file first, its key instead."""
    key = Ed25519PrivateKey.generate()
    try:
        _write_new(path, key)
    except FileExistsError:
        found = load(path)
        if found is None:  # created and removed again in between: start over
            return create(path)
        return found
    return key


class Replacement:
    """A new key written beside `path` (owner-only); `commit()` moves it over the old file."""

    def __init__(self, path: Path):
        self.path, self.key = path, Ed25519PrivateKey.generate()
        self.temporary = path.with_name(f".{path.name}.new-{os.getpid()}")
        self.temporary.unlink(missing_ok=True)
        try:
            _write_new(self.temporary, self.key)
        except FileExistsError:
            raise KeyFileError(f"{self.temporary} appeared while writing it; try again") from None

    def commit(self) -> None:
        os.replace(self.temporary, self.path)

    def discard(self) -> None:
        self.temporary.unlink(missing_ok=True)
