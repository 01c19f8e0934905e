"""A readable sentence per timeline event, for CSV summaries and Markdown/HTML reports.

Plain text (no markup): each output format escapes it itself. User text is quoted in full; the
subject (the actor) is shown in its own column, so sentences start with a verb. Note numbers are
event ids, the same `#n` that Slack shows and `/incident note correct` takes.

The sentences are written by the bundle checker's own functions (vigil_ir.exports.bundle.checker,
shipped in every bundle as verify.py, standard library only): the checker re-derives each event's
summary from its hashed data, so there is one rule per event kind, kept where an auditor reads it.
A new event kind gets its sentence there, in SENTENCES.
"""

from __future__ import annotations

from vigil_ir.exports.bundle.checker import SENTENCES, changes_text, describe, one_line, when

__all__ = ["SENTENCES", "changes_text", "describe", "one_line", "when"]
