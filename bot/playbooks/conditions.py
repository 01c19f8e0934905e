"""Step conditions (`when:`), e.g. `severity in [sev1, sev2] and security == true`.

A hand-written parser for a tiny grammar, never `eval`: a playbook file must not be able to run
code. Grammar (`and` binds tighter than `or`; there are no parentheses):

    condition := conjunction ("or" conjunction)*
    conjunction := clause ("and" clause)*
    clause := FIELD "in" list | FIELD "not" "in" list | FIELD "==" VALUE | FIELD "!=" VALUE
    list := "[" VALUE ("," VALUE)* "]"

FIELD is one of severity, type, security, status; VALUEs are bare words checked per field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from vigil_ir.incidents.models import ACTIVE_STATUSES, SEVERITIES, TYPES

# The values each field may be compared with (`closed` is left out: steps are not run then).
FIELD_VALUES: dict[str, tuple[str, ...]] = {
    "severity": tuple(SEVERITIES),
    "type": tuple(TYPES),
    "security": ("true", "false"),
    "status": (*ACTIVE_STATUSES, "resolved"),
}
_TOKEN = re.compile(r"\s*(?:(==|!=|\[|\]|,)|([A-Za-z0-9_\-]+)|(\S))")


@dataclass(frozen=True)
class Clause:
    field: str
    negate: bool  # `not in` / `!=`
    values: frozenset  # str values, or bools for `security`

    def evaluate(self, facts: Mapping) -> bool:
        if self.field not in facts:
            raise ValueError(f"condition needs the incident's {self.field!r}")
        value = facts[self.field]
        if self.field == "security" and isinstance(value, str):
            value = value == "true"
        return (value in self.values) != self.negate


@dataclass(frozen=True)
class Condition:
    """Clauses in disjunctive form: any group true, where a group is true when all its clauses are."""

    text: str
    groups: tuple[tuple[Clause, ...], ...]

    def evaluate(self, facts: Mapping) -> bool:
        return any(all(clause.evaluate(facts) for clause in group) for group in self.groups)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(clause.field for group in self.groups for clause in group)

    def __str__(self) -> str:
        return self.text


def evaluate(text: str, facts: Mapping) -> bool:
    return parse_condition(text).evaluate(facts)


def parse_condition(text: str) -> Condition:
    """Parse `text`; ValueError saying what is wrong and where otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty condition (e.g. `severity in [sev1, sev2]`)")
    return Condition(text=text, groups=_Parser(text).parse())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[int, str, str]] = []  # (position, kind, value); kind: op|word|bad
        for match in _TOKEN.finditer(text):
            if match.lastindex is None:
                continue  # trailing white space
            kind = ("op", "word", "bad")[match.lastindex - 1]
            self.tokens.append((match.start(match.lastindex), kind, match.group(match.lastindex)))
        self.index = 0

    def parse(self) -> tuple[tuple[Clause, ...], ...]:
        groups, group = [], [self.clause()]
        while self.index < len(self.tokens):
            joiner = self.take("word", expected="`and` or `or`")
            if joiner not in ("and", "or"):
                self.fail(f"expected `and` or `or`, found {joiner!r}", back=1)
            if joiner == "or":
                groups.append(tuple(group))
                group = []
            group.append(self.clause())
        groups.append(tuple(group))
        return tuple(groups)

    def clause(self) -> Clause:
        field = self.take("word", expected="a field (severity, type, security or status)")
        if field not in FIELD_VALUES:
            self.fail(f"unknown field {field!r} (use severity, type, security or status)", back=1)
        operator = self.take(None, expected="`in`, `not in`, `==` or `!=`")
        if operator in ("==", "!="):
            return Clause(field, operator == "!=", frozenset([self.value(field)]))
        negate = operator == "not"
        if negate:
            operator = self.take("word", expected="`in` after `not`")
        if operator != "in":
            self.fail(f"expected `in`, `not in`, `==` or `!=` after {field!r}, found {operator!r}", back=1)
        if self.take(None, expected="`[`") != "[":
            self.fail("expected `[` to start the list of values", back=1)
        values = [self.value(field)]
        while (separator := self.take(None, expected="`,` or `]`")) == ",":
            values.append(self.value(field))
        if separator != "]":
            self.fail(f"expected `,` or `]`, found {separator!r}", back=1)
        return Clause(field, negate, frozenset(values))

    def value(self, field: str):
        word = self.take("word", expected=f"a {field} value")
        allowed = FIELD_VALUES[field]
        if word not in allowed:
            self.fail(f"{word!r} is not a valid {field} (use {', '.join(allowed)})", back=1)
        return word == "true" if field == "security" else word

    def take(self, kind: str | None, *, expected: str) -> str:
        if self.index >= len(self.tokens):
            self.fail(f"expected {expected} at the end")
        position, found_kind, value = self.tokens[self.index]
        self.index += 1
        if found_kind == "bad" or (kind is not None and found_kind != kind):
            hint = "; parentheses are not supported (`and` binds tighter than `or`)" if value in "()" else ""
            self.fail(f"expected {expected}, found {value!r}{hint}", back=1)
        return value

    def fail(self, message: str, *, back: int = 0) -> None:
        index = self.index - back
        position = self.tokens[index][0] if index < len(self.tokens) else len(self.text)
        raise ValueError(f"invalid condition {self.text!r}: {message} (at character {position + 1})")
