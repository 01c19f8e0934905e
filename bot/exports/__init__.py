"""Audit exports: incident timelines (E2/E3) and the incident population (E1).

Each export reads the database only; rendering is pure so the same rows feed JSON, CSV, Markdown
and HTML. `vigil_ir.exports.cli.export` is the `vigil export` command group.
"""
