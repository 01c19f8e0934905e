"""Alembic migrations, installed as `vigil_ir.migrations` (located with importlib.resources)."""
