"""No bundle from tampered state: the period's records checked against their events first.

A bundle is built from the state tables, so `vigil export bundle` runs the folds `vigil verify` runs
(vigil_ir.state_check) over the records whose streams began before the period's end, on the bundle's
own snapshot, and refuses, naming each difference, when they disagree. The check runs in a process of
its own beside the export (vigil_ir.exports.bundle.parallel); the bundle is kept only once it passed.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

SHOWN = 20  # differences named in the refusal; the count covers them all


class StateDiffers(Exception):
    """The state rows disagree with their events: no bundle is written."""

    def __init__(self, count: int, shown: list[str]):
        super().__init__(f"{count} state row difference(s) with the event log")
        self.count, self.shown = count, shown

    def __reduce__(self):  # raised in the checking process, re-raised in the exporting one
        return StateDiffers, (self.count, self.shown)

    def refusal(self) -> str:
        """What `vigil export bundle` says."""
        shown = "\n".join(f"  {line}" for line in self.shown)
        more = f"\n  ({self.count - SHOWN} more)" if self.count > SHOWN else ""
        return (f"No bundle written: {self.count} state row difference(s) with the event log, so the tables the "
                f"bundle is built from cannot be trusted:\n{shown}{more}\nThe events are the record; see "
                "docs/operations.md, 'When vigil verify fails'.")


def differences(session: Session, end: datetime) -> StateDiffers | None:
    """The differences of the records begun before `end` (None when there are none)."""
    from vigil_ir.state_check import check_state

    check = check_state(session, before=end)
    if not check.count:
        return None
    return StateDiffers(check.count, [mismatch.describe() for mismatch in check.found[:SHOWN]])


def refuse_differences(session: Session, end: datetime) -> None:
    """Raise StateDiffers when the records begun before `end` disagree with their events."""
    found = differences(session, end)
    if found is not None:
        raise found
