"""The playbooks shipped with Vigil, installed as `vigil_ir.shipped_playbooks` (package data)."""
