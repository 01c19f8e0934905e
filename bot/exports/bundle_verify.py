"""`vigil verify --bundle FILE`: check an evidence bundle offline, with nothing but the zip.

The checks are vigil_ir.exports.bundle_checker, a module that uses only Python's standard library
and is shipped byte for byte inside every bundle as `verify.py`: what `vigil verify --bundle` checks
is exactly what an auditor can run without Vigil (`python verify.py bundle.zip`). Its docstring
lists the checks; docs/audit-evidence.md says what each proves and what it cannot.
"""

from __future__ import annotations

from pathlib import Path

from vigil_ir.exports import bundle_checker
from vigil_ir.exports.bundle_checker import BundleError, Check

BundleCheck = Check
STANDALONE_NAME = "verify.py"

__all__ = ["BundleCheck", "BundleError", "report", "standalone_source", "verify_bundle"]


def standalone_source() -> bytes:
    """The checker's source, as shipped in the bundle as verify.py."""
    return Path(bundle_checker.__file__).read_bytes()


def verify_bundle(path: Path) -> Check:
    """Check the bundle at `path`; raises BundleError when it cannot be read as a bundle at all."""
    return bundle_checker.check_bundle(Path(path))


def report(path: Path, out, err) -> int:
    """Print the outcome (`out`/`err` take one line each) and return the exit code: 0 OK, 1 otherwise."""
    return bundle_checker.report(Path(path), out, err)
