"""The scoring methodology: scales, the 5×5 matrix, level bands, default review cadence per level.

Versioned and immutable once used: each risk stores the version it was scored with, so a later
methodology cannot silently change an old score (ISO 27005 6.1.2 b; auditors ask "scored how?").
A new version is a new entry in METHODOLOGIES; never edit a published one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scale:
    value: int
    label: str
    definition: str


@dataclass(frozen=True)
class Band:
    level: str
    low: int
    high: int


@dataclass(frozen=True)
class Methodology:
    version: str
    effective_from: str
    likelihood: tuple[Scale, ...]
    impact: tuple[Scale, ...]
    bands: tuple[Band, ...]
    formula: str = "product"  # score = likelihood × impact
    # Review cadence used when a risk names none; keyed by the inherent level.
    default_cadence: dict[str, str] = field(default_factory=dict)
    # The highest residual level tolerated without treatment or a formal acceptance; risks above it
    # are listed in the periodic assessment (E10). Not part of scoring, so stating it changes no score.
    appetite: str = "medium"

    def above_appetite(self, level: str) -> bool:
        return level_rank(level) > level_rank(self.appetite)

    def score(self, likelihood: int, impact: int) -> int:
        check_rating(likelihood, "likelihood")
        check_rating(impact, "impact")
        return likelihood * impact

    def level(self, score: int) -> str:
        for band in self.bands:
            if band.low <= score <= band.high:
                return band.level
        raise ValueError(f"score {score} is outside every band of methodology {self.version}")

    def rate(self, likelihood: int, impact: int) -> tuple[int, str]:
        score = self.score(likelihood, impact)
        return score, self.level(score)

    def label(self, axis: str, value: int) -> str:
        return next(s.label for s in getattr(self, axis) if s.value == value)

    def matrix(self) -> list[list[str]]:
        """Levels by [likelihood-1][impact-1]: the 5×5 grid shown in the heat map."""
        return [[self.level(self.score(lk, im)) for im in range(1, 6)] for lk in range(1, 6)]

    def describe(self) -> dict:
        """The methodology as exported (E13)."""
        def scale(items):
            return [{"value": s.value, "label": s.label, "definition": s.definition} for s in items]

        return {"version": self.version, "effective_from": self.effective_from, "formula": self.formula,
                "likelihood_scale": scale(self.likelihood), "impact_scale": scale(self.impact),
                "level_bands": [{"level": b.level, "min": b.low, "max": b.high} for b in self.bands],
                "grid": self.matrix(), "review_cadence_by_level": dict(self.default_cadence),
                "appetite": {"highest_residual_level_tolerated": self.appetite,
                             "above": [level for level in LEVELS if self.above_appetite(level)]}}


def check_rating(value: int, axis: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValueError(f"{axis} must be a whole number from 1 to 5 (got {value!r})")


LEVELS = ("low", "medium", "high", "critical")

V2025_1 = Methodology(
    version="2025.1",
    effective_from="2025-01-01",
    likelihood=(
        Scale(1, "Rare", "Not expected in the next 5 years (< 5% a year)."),
        Scale(2, "Unlikely", "Could happen once in 2–5 years (5–20% a year)."),
        Scale(3, "Possible", "Could happen about once a year (20–50% a year)."),
        Scale(4, "Likely", "Expected several times a year (50–90% a year)."),
        Scale(5, "Almost certain", "Expected monthly or is already happening (> 90% a year)."),
    ),
    impact=(
        Scale(1, "Negligible", "No customer impact; fixed in normal work; no data exposed."),
        Scale(2, "Minor", "Brief degradation for a few customers; internal data only; no SLA missed."),
        Scale(3, "Moderate", "Outage under 4 h or limited confidential data exposed; one SLA missed."),
        Scale(4, "Major", "Outage over 4 h, personal data of many customers, or regulator notice."),
        Scale(5, "Severe", "Prolonged outage, large breach, or loss of key customers or a licence."),
    ),
    bands=(Band("low", 1, 4), Band("medium", 5, 9), Band("high", 10, 16), Band("critical", 17, 25)),
    default_cadence={"critical": "quarterly", "high": "quarterly", "medium": "semiannual", "low": "annual"},
)

METHODOLOGIES: dict[str, Methodology] = {V2025_1.version: V2025_1}
CURRENT = V2025_1


def methodology(version: str | None = None) -> Methodology:
    if version is None:
        return CURRENT
    try:
        return METHODOLOGIES[version]
    except KeyError:
        raise ValueError(f"unknown scoring methodology version {version!r}") from None


def level_rank(level: str) -> int:
    return LEVELS.index(level)
