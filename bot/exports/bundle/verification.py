"""`vigil verify --bundle FILE`: check an evidence bundle offline, with nothing but the zip.

The checks are vigil_ir.exports.bundle.checker, a module that uses only Python's standard library
and is shipped byte for byte inside every bundle as `verify.py`: what `vigil verify --bundle` checks
is exactly what an auditor can run without Vigil (`python verify.py bundle.zip`). Its docstring
lists the checks; docs/audit-evidence.md says what each proves and what it cannot. The signature is
checked here with `cryptography` (vigil_ir.exports.bundle.signature_check), which also confirms whose key
made it; the standalone checker verifies the same signature with its own RFC 8032 code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from vigil_ir.exports.bundle import checker, signature_check
from vigil_ir.exports.bundle.checker import BundleError, Check

BundleCheck = Check
STANDALONE_NAME = "verify.py"
SHOWN = checker.SHOWN

__all__ = ["BundleCheck", "BundleError", "report", "standalone_source", "verify_bundle"]


def standalone_source() -> bytes:
    """The checker's source, as shipped in the bundle as verify.py."""
    return Path(checker.__file__).read_bytes()


def verify_bundle(path: Path, previous: Path | None = None) -> Check:
    """Check the bundle at `path` (and that `previous` is the bundle it names as the one before);
    raises BundleError when it cannot be read as a bundle at all."""
    check = checker.check_bundle(Path(path), signature=False, previous=previous)
    with zipfile.ZipFile(path) as archive:
        check.signed = signature_check.check(archive, check.problems, check.key_publications)
    return check


def report(path: Path, out, err, installation: signature_check.Installation | None = None,
           previous: Path | None = None) -> int:
    """Print the outcome (`out`/`err` take one line each) and return the exit code: 0 OK, 1 otherwise.

    `installation`: whose signing keys to accept (the database's recorded keys, --key); none: unconfirmed.
    `previous`: the bundle exported before this one (--previous)."""
    try:
        check = verify_bundle(path, previous)
    except BundleError as exc:
        err(f"BROKEN: {exc}")
        return 1
    except (OSError, zipfile.BadZipFile, EOFError) as exc:  # e.g. a truncated zip, a corrupt member
        err(f"BROKEN: {path}: cannot be read ({exc})")
        return 1
    period = check.manifest.get("period", {})
    key_lines = (installation or signature_check.Installation(where="no database consulted")).confirm(
        check.signed, check.manifest, check.problems)
    if check.ok:
        out(f"OK: {path}: {check.files} files match the manifest; {check.segments} chain segments "
            f"({check.events} events) re-verified; every claim of the manifest checked; period {period.get('start')} "
            f"to {period.get('end')}; heads digest {check.manifest['event_log']['heads'].get('digest')}")
        out(f"Manifest SHA-256: {check.signed.manifest_sha256}")
        for line in key_lines:
            out(line)
        if previous is not None:
            out(f"Previous bundle: {previous} is the bundle this one names (manifest sha256 "
                f"{check.manifest['previous_bundle'].get('manifest_sha256')})")
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
