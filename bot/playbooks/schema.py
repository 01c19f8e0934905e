"""The playbook file schema (docs/playbooks.md is its reference).

Pydantic checks each field; `cross_check` checks what spans fields (unique ids, roles, step
references). Build playbooks through `vigil_ir.playbooks.loader` (parse_playbook, load_file), which
runs both plus the template lint; `Playbook.model_validate` alone runs only the first.
Models are strict and forbid unknown fields, so a typo such as `instruction:` or
`required: "no"` is an error rather than silently ignored. Text limits match the playbook
tables, so whatever lints can be stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints,
                      field_validator, model_validator)

from vigil_ir import criteria
from vigil_ir.incidents.models import ROLES, SEVERITIES, TYPES
from vigil_ir.playbooks.conditions import Condition, parse_condition
from vigil_ir.playbooks.durations import is_whole_days, parse_duration

BASE_ROLES = tuple(ROLES)  # lead, comms, scribe: every playbook may use them
EVIDENCE = ("none", "note", "link")
CLOCK_STARTS = ("detected_at", "declared_at", "attached_at")
_KEBAB_TEXT = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_KEBAB = re.compile(_KEBAB_TEXT)
_ROLE = re.compile(r"[a-z][a-z0-9_-]*")


def _matching(pattern: str, message: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(message.format(value=value))
        return value
    return AfterValidator(check)


def _criterion(value: str) -> str:
    found = criteria.find(value)
    if found is None:
        raise ValueError(f"{value!r} is not in the SOC 2 Trust Services Criteria or ISO/IEC 27001 Annex A "
                         f"(e.g. CC7.4, A.5.26; `vigil criteria list` shows them all){criteria.suggestion(value)}")
    return found.id


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


_kebab = _matching(_KEBAB_TEXT, "{value!r} is not kebab-case (lower-case letters, digits, single hyphens; "
                                "e.g. confirm-scope)")
_version = _matching(r"\d+\.\d+(?:\.\d+)?",
                     "invalid version {value!r} (use MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. \"1.2.0\")")
_role = _matching(_ROLE.pattern, "invalid role name {value!r} (lower-case letters, digits, - or _)")
_step_ref = _matching(f"step:{_KEBAB_TEXT}", "{value!r} must be step:<step-id>")
_clock_start = _matching(f"{'|'.join(CLOCK_STARTS)}|step:{_KEBAB_TEXT}",
                         "{value!r} must be " + ", ".join(CLOCK_STARTS) + " or step:<step-id>")

PlaybookId = Annotated[str, StringConstraints(min_length=3, max_length=64), _kebab]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=64), _kebab]
Title = Annotated[str, StringConstraints(min_length=1, max_length=150), AfterValidator(_nonblank)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_nonblank)]
Version = Annotated[str, StringConstraints(max_length=32), _version]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=32), _role]
CriterionRef = Annotated[str, StringConstraints(min_length=1, max_length=16), AfterValidator(_criterion)]
IncidentType = Literal[tuple(TYPES)]  # type: ignore[valid-type]
Severity = Literal[tuple(SEVERITIES)]  # type: ignore[valid-type]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _KeepsDurationText(_Model):
    """Keeps the duration as written (`90m`), which the parsed timedelta would lose."""

    _duration_field: ClassVar[str] = ""
    _text: str | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_text(cls, data: Any, handler):
        model = handler(data)
        if isinstance(data, Mapping) and isinstance(data.get(cls._duration_field), str):
            model._text = data[cls._duration_field]
        return model


class AppliesTo(_Model):
    """When Vigil suggests the playbook; an empty list matches anything."""

    types: list[IncidentType] = Field(default_factory=list)
    severities: list[Severity] = Field(default_factory=list)


class Deadline(_KeepsDurationText):
    _duration_field: ClassVar[str] = "duration"

    id: Ident
    label: Label
    duration: timedelta
    business_days: bool = False
    from_: Annotated[str, _clock_start] = Field(alias="from")
    met_by: Annotated[str, _step_ref] | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @property
    def duration_text(self) -> str:
        return self._text

    @property
    def from_step(self) -> str | None:
        """The step whose completion starts the clock, or None for an incident time."""
        return self.from_[5:] if self.from_.startswith("step:") else None

    @property
    def met_by_step(self) -> str | None:
        return self.met_by[5:] if self.met_by else None


class Step(_KeepsDurationText):
    _duration_field: ClassVar[str] = "due_after"

    id: Ident
    title: Label
    instructions: str = ""
    role: RoleName | None = None
    due_after: timedelta | None = None
    required: bool = True
    evidence: Literal[EVIDENCE] = "none"  # type: ignore[valid-type]
    when: str | None = None
    criteria: list[CriterionRef] = Field(default_factory=list, max_length=20)  # what the step evidences
    _condition: Condition | None = PrivateAttr(None)

    @field_validator("due_after", mode="before")
    @classmethod
    def _parse_due_after(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @field_validator("when")
    @classmethod
    def _check_when(cls, value: str | None) -> str | None:
        if value is not None:
            parse_condition(value)
        return value

    def model_post_init(self, context: Any) -> None:
        self._condition = parse_condition(self.when) if self.when is not None else None

    @property
    def due_after_text(self) -> str | None:
        return self._text

    @property
    def condition(self) -> Condition | None:
        return self._condition

    def applies(self, facts: Mapping[str, Any]) -> bool:
        """Whether the step is part of the checklist for an incident with these facts."""
        return self._condition is None or self._condition.evaluate(facts)


class Phase(_Model):
    id: Ident
    title: Title
    steps: list[Step] = Field(min_length=1)


class Playbook(_Model):
    id: PlaybookId
    title: Title
    version: Version
    description: Annotated[str, AfterValidator(_nonblank)]
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    roles: list[RoleName] = Field(default_factory=list)
    deadlines: list[Deadline] = Field(default_factory=list)
    phases: list[Phase] = Field(min_length=1)

    @property
    def allowed_roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(BASE_ROLES + tuple(self.roles)))

    def applies(self, type: str, severity: str) -> bool:  # noqa: A002 -- the incident field's name
        """Whether to suggest this playbook for an incident of this type and severity."""
        wanted = self.applies_to
        return (not wanted.types or type in wanted.types) and (not wanted.severities or severity in wanted.severities)

    def iter_steps(self) -> Iterator[tuple[Phase, Step]]:
        for phase in self.phases:
            for step in phase.steps:
                yield phase, step

    def step(self, step_id: str) -> Step | None:
        return next((step for _, step in self.iter_steps() if step.id == step_id), None)


def cross_check(data: Mapping) -> list[tuple[tuple, str]]:
    """Rules spanning fields, as (location, message). They run on the raw YAML data, so they are
    reported in the same lint run as field errors; items of the wrong shape are left to pydantic."""
    found: list[tuple[tuple, str]] = []
    phases, steps = _items(data.get("phases")), raw_steps(data)
    deadlines = _items(data.get("deadlines"))
    roles = data.get("roles") if isinstance(data.get("roles"), list) else []
    _duplicates(found, "phase", [(("phases", i, "id"), phase.get("id")) for i, phase in phases])
    _duplicates(found, "step", [((*loc, "id"), step.get("id")) for loc, step in steps])
    _duplicates(found, "deadline", [(("deadlines", i, "id"), deadline.get("id")) for i, deadline in deadlines])
    _duplicates(found, "role", [(("roles", i), role) for i, role in enumerate(roles)])
    allowed = tuple(dict.fromkeys(BASE_ROLES + tuple(role for role in roles if isinstance(role, str))))
    for loc, step in steps:
        role = step.get("role")
        if isinstance(role, str) and _ROLE.fullmatch(role) and role not in allowed:
            found.append(((*loc, "role"), f"unknown role {role!r} (allowed: {', '.join(allowed)}; "
                                          "list other roles under `roles:`)"))
    step_ids = {step.get("id") for _, step in steps if isinstance(step.get("id"), str)}
    for i, deadline in deadlines:
        refs = {key: value[5:] for key in ("from", "met_by")
                if isinstance(value := deadline.get(key), str) and value.startswith("step:")}
        for key, ref in refs.items():
            if _KEBAB.fullmatch(ref) and ref not in step_ids:
                found.append((("deadlines", i, key), f"unknown step {ref!r}"))
        if refs.get("from") and refs.get("from") == refs.get("met_by"):
            found.append((("deadlines", i, "met_by"), "a deadline cannot be met by the step that starts it"))
        duration = deadline.get("duration")
        if deadline.get("business_days") is True and isinstance(duration, str) and not is_whole_days(duration):
            found.append((("deadlines", i, "duration"),
                          f"business_days: true needs whole days such as 4d, not {duration!r}"))
    return found


def raw_steps(data: Mapping) -> list[tuple[tuple, Mapping]]:
    """(location, step) for every step-shaped item in raw playbook data."""
    return [(("phases", i, "steps", j), step) for i, phase in _items(data.get("phases"))
            for j, step in _items(phase.get("steps"))]


def _items(value: Any) -> list[tuple[int, Mapping]]:
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)] if isinstance(value, list) else []


def _duplicates(found: list, what: str, items: list[tuple[tuple, Any]]) -> None:
    first: dict[str, tuple] = {}
    for loc, value in items:
        if not isinstance(value, str):
            continue
        if value in first:
            found.append((loc, f"duplicate {what} {value!r} (first at {format_loc(first[value])})"))
        else:
            first[value] = loc


def format_loc(loc: tuple) -> str:
    """`("phases", 0, "steps", 2, "id")` → `phases[0].steps[2].id`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
