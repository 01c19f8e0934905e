"""The evidence bundle for an audit period: one signed zip, every file hashed in `manifest.json`.

`export.export_bundle` writes it: one section writer per module (incidents, carried_over, security,
cadence, actions, exercises, risks, audit_log, notifications, policy, signoffs, program, people,
chain_heads, criteria_index), each given the shared `context.Context` and writing through
`files` (zip entries and CSV/JSON tables, hashed as written). `checker` is the standalone checker
shipped inside every bundle as `verify.py` (standard library only); `verification` is
`vigil verify --bundle`, which runs it and checks the signature with `signature_check`.

The package itself imports nothing at import time (the checker must load without the rest of
Vigil); `export_bundle` is offered here lazily as the package's entry point.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_bundle"]


def __getattr__(name: str) -> Any:
    if name == "export_bundle":
        from vigil_ir.exports.bundle.export import export_bundle

        return export_bundle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
