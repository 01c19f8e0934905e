"""Shared pieces of the property-based tests (tests/test_fuzz_*.py): strategies, row counts, settings.

Hypothesis runs many examples inside one test function, so function-scoped fixtures (the database,
the `vigil` harness) are shared by the examples of one test: each example makes its own keys
(view ids, titles) unique and compares row counts before and after itself.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from vigil_ir.db import migrate
from vigil_ir.tables import metadata

# Fast and repeatable by default; VIGIL_FUZZ_SCALE=20 multiplies every test's examples for a long
# local run, and VIGIL_FUZZ_RANDOM=1 draws new examples each run instead of the same ones.
SCALE = float(os.environ.get("VIGIL_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("VIGIL_FUZZ_RANDOM") == "1"


def fuzz(examples: int = 60, **extra):
    """Hypothesis settings for tests sharing a function-scoped database."""
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=not RANDOM, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large], **extra)


_sqlite_url: list[str] = []


@pytest.fixture(scope="session", name="database_url")
def sqlite_database_url(tmp_path_factory) -> str:
    """Replaces conftest's `database_url` in the modules that import it: SQLite only, so their tests
    are not repeated on PostgreSQL. Property tests make hundreds of requests, and the parsing and
    validation they exercise happen before the database; tests/test_fuzz_text_storage.py and the
    security tests run on both backends and cover what only PostgreSQL refuses (NUL characters)."""
    if not _sqlite_url:
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzzdb') / 'vigil.db'}"
        migrate(url)
        _sqlite_url.append(url)
    return _sqlite_url[0]


def row_counts(db) -> dict[str, int]:
    with db.engine.connect() as connection:
        return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables}


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {name: (before[name], after[name]) for name in before if before[name] != after[name]}


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text[:2000]
    # A listener that raised now answers 200 with this notice (bot/slack/failures.py): still a bug here.
    assert "Something went wrong in Vigil" not in text, text[:2000]


# ---- strategies --------------------------------------------------------------------------------
SLACK_SYNTAX = ["<!channel>", "<!here>", "<!everyone>", "<@U0EVIL>", "<@U0EVIL|evil>", "<#C0EVIL>",
                "<!subteam^S0EVIL>", "<https://evil.example|click>", "&", "&amp;", "&lt;", "<script>alert(1)</script>",
                "*bold*", "_it_", "~x~", "`code`", "```block```", ">quote", ":pushpin:", "\u202e", "\u200b", "\x00",
                "\r\n", "\t", "\x1b[31m", "=HYPERLINK(\"x\")", "+1", "-1", "@SUM(A1)", "payload", "payload=",
                "%00", "{{ 7*7 }}", "{% raw %}", "' OR 1=1 --", "\ud7ff", "\U0001f525", "ß", "İ", "ﬁ"]
hostile_piece = st.one_of(st.sampled_from(SLACK_SYNTAX), st.text(max_size=20),
                          st.text(st.characters(codec="utf-8"), max_size=10))
hostile_text = st.one_of(
    st.lists(hostile_piece, max_size=6).map("".join),
    st.text(max_size=60),
    st.integers(min_value=3001, max_value=20_000).map(lambda n: "x" * n),  # longer than any field allows
    st.just(""), st.just("   "), st.just("\n\n"),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**64),
                         st.floats(allow_nan=False), hostile_text)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
