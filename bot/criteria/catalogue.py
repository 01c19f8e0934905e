"""Loading the shipped catalogues and looking identifiers up in them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

FILES = ("soc2_tsc.yaml", "iso27001_annex_a.yaml")


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    catalogue: str  # e.g. "SOC 2 Trust Services Criteria"
    version: str

    @property
    def label(self) -> str:
        return f"{self.id} {self.title}"


@dataclass(frozen=True)
class Catalogue:
    key: str
    name: str
    version: str
    criteria: tuple[Criterion, ...]


def _load(filename: str) -> Catalogue:
    data = yaml.safe_load(resources.files(__package__).joinpath(filename).read_text(encoding="utf-8"))
    items = tuple(Criterion(str(ident), str(title), data["name"], str(data["version"]))
                  for ident, title in data["criteria"].items())
    return Catalogue(data["catalogue"], data["name"], str(data["version"]), items)


@cache
def _all() -> tuple[tuple[Catalogue, ...], dict[str, Criterion]]:
    catalogues = tuple(_load(name) for name in FILES)
    return catalogues, {c.id: c for catalogue in catalogues for c in catalogue.criteria}


def catalogues() -> tuple[Catalogue, ...]:
    """The shipped catalogues, in the order of FILES (loaded once, on first use)."""
    return _all()[0]


def normalise(ref: str) -> str:
    """The catalogue spelling of a reference as people type it: `cc7.4` → `CC7.4`, `a.5.24` → `A.5.24`."""
    return re.sub(r"\s+", "", ref or "").upper()


def find(ref: str) -> Criterion | None:
    return _all()[1].get(normalise(ref))


def unknown(refs: Iterable[str]) -> list[str]:
    """The references (as given) that are in no catalogue."""
    return [ref for ref in refs if find(ref) is None]


def suggestion(ref: str) -> str:
    """A hint for a reference that is in no catalogue."""
    wanted = normalise(ref)
    if re.fullmatch(r"\d+\.\d+", wanted):
        return f"; ISO/IEC 27001 Annex A controls are written A.{wanted}"
    return ""
