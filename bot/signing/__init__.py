"""The installation's Ed25519 signing key: where it lives, its events, rotation (docs/audit-evidence.md)."""
