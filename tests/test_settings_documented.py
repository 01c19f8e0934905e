"""Every setting Vigil reads is documented where a user looks: `.env.example` (with its default) and
the README's configuration table. A variable added without docs fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vigil_ir.config import Settings

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = sorted(field.alias for field in Settings.model_fields.values())


@pytest.mark.parametrize("variable", VARIABLES)
def test_env_example_lists_the_variable_with_its_default(variable):
    text = (ROOT / ".env.example").read_text()
    assert re.search(rf"^# {variable}=", text, re.MULTILINE), f"{variable} is missing from .env.example"


@pytest.mark.parametrize("variable", VARIABLES)
def test_readme_documents_the_variable(variable):
    assert f"`{variable}`" in (ROOT / "README.md").read_text(), f"{variable} is missing from README.md"


def test_env_example_names_no_variable_vigil_does_not_read():
    named = set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert named <= set(VARIABLES), named - set(VARIABLES)
