"""Migration scripts (a package so the wheel carries them)."""
