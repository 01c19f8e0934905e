"""The criteria catalogues: risks and playbook steps may only name criteria that exist, and the
bundle's criteria index leads from a criterion to the files (and row counts) that evidence it."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir import criteria
from vigil_ir.cli import main
from vigil_ir.exports.bundle.criteria_index import MAPPING, PACKETS
from vigil_ir.playbooks.loader import PlaybookError, parse_playbook
from vigil_ir.risks.models import Risk

DOCS = Path(__file__).resolve().parents[1] / "docs" / "audit-evidence.md"
HEADER = "title,statement,category,type,owner,likelihood,impact,tsc_refs\n"
PLAYBOOK = """\
id: tiny
title: Tiny
version: "1.0.0"
description: One step.
phases:
  - id: only
    title: Only
    steps:
      - id: triage
        title: Triage
        criteria: [{refs}]
"""


def run(db, *args):
    return CliRunner().invoke(main, list(args), obj={"database": db})


def test_the_catalogues_hold_every_soc2_and_iso_27001_identifier_once():
    soc2, iso = criteria.catalogues()
    assert (len(soc2.criteria), len(iso.criteria)) == (61, 93)
    ids = [c.id for catalogue in criteria.catalogues() for c in catalogue.criteria]
    assert len(ids) == len(set(ids))
    assert {f"CC{n}" for n in ("1.5", "6.8", "7.5", "8.1", "9.2")} <= set(ids)
    assert {"A1.3", "C1.2", "PI1.5", "P8.1", "A.5.37", "A.6.8", "A.7.14", "A.8.34"} <= set(ids)
    assert criteria.find("cc7.4").id == "CC7.4" and criteria.find("a.5.24").title.startswith("Incident management")
    assert criteria.find("CC10.1") is None and criteria.find("5.24") is None


def test_risk_import_refuses_an_unknown_criterion_and_keeps_the_catalogue_spelling(db, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + 'Laptop theft,Stolen laptop,security,internal,U0OWNER,4,4,"CC6.1;CC6.9;5.24"\n')
    result = run(db, "risks", "import", str(bad))
    assert result.exit_code == 1
    assert "row 2, column tsc_refs: CC6.9, 5.24 are not in the SOC 2 Trust Services Criteria or ISO/IEC 27001" \
        in result.output and "written A.5.24" in result.output
    with db.session() as s:
        assert s.exec(select(Risk)).all() == []
    good = tmp_path / "good.csv"
    good.write_text(HEADER + 'Laptop theft,Stolen laptop,security,internal,U0OWNER,4,4,"cc6.1; a.5.17"\n')
    assert run(db, "risks", "import", str(good)).exit_code == 0
    with db.session() as s:
        assert s.exec(select(Risk)).one().tsc_refs == ["CC6.1", "A.5.17"]


def test_playbook_lint_names_an_unknown_criterion_at_its_step():
    assert parse_playbook(PLAYBOOK.format(refs="cc7.3, A.5.25")).step("triage").criteria == ["CC7.3", "A.5.25"]
    with pytest.raises(PlaybookError) as refused:
        parse_playbook(PLAYBOOK.format(refs="CC7.3, CC7.9"), source="tiny.yaml")
    (error,) = refused.value.errors
    assert error.line == 11 and "criteria" in error.field and "'CC7.9' is not in the SOC 2" in error.message


def test_vigil_criteria_list_prints_each_catalogue():
    result = CliRunner().invoke(main, ["criteria", "list", "--catalogue", "iso27001"])
    assert result.exit_code == 0 and result.output.startswith("# ISO/IEC 27001 Annex A (2022)\n")
    assert "A.5.26\tSecurity incidents are responded to\n" in result.output and "CC7.4" not in result.output
    listed = json.loads(CliRunner().invoke(main, ["criteria", "list", "--format", "json"]).output)
    assert [len(c["criteria"]) for c in listed] == [61, 93]


def test_the_bundle_indexes_each_criterion_to_its_files_with_row_counts(db, tmp_path):
    result = CliRunner().invoke(main, ["demo"], env={"DATABASE_URL": db.url})
    assert result.exit_code == 0, result.output
    start, end = re.search(r"Demo quarter (\S+) to (\S+):", result.output).groups()
    bundle = tmp_path / "demo.zip"
    exported = CliRunner().invoke(main, ["export", "bundle", "--from", start, "--to", end, "-o", str(bundle)],
                                  env={"DATABASE_URL": db.url})
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        index = json.loads(archive.read("criteria_index.json"))
        as_csv = list(csv.DictReader(io.StringIO(archive.read("criteria_index.csv").decode("utf-8-sig"))))
        register = next(f["path"] for f in manifest["files"] if f["path"].startswith("risk_register_")
                        and f["path"].endswith(".json"))
        risks = json.loads(archive.read(register))
        playbook_files = {f["path"]: archive.read(f["path"]).decode() for f in manifest["files"]
                          if f["path"].startswith("policy/playbooks/")}
    rows = {f["path"]: f["rows"] for f in manifest["files"]}
    assert len(as_csv) == len(index) and all(criteria.find(row["criterion"]) for row in index)
    by = {(row["criterion"], row["file"], row["basis"]): row for row in index}
    # mapped files carry the manifest's row count
    assert by[("CC7.3", "incidents.csv", "mapping")]["rows"] == rows["incidents.csv"] == 3
    assert by[("CC3.2", "risk_reviews.csv", "mapping")]["rows"] == rows["risk_reviews.csv"]
    folders = {p.split("/")[1] for p in rows if p.startswith("incidents/INC-")}
    assert by[("A.5.28", PACKETS, "mapping")]["rows"] == len(folders) == 3
    assert by[("CC7.4", "incidents.csv", "mapping")]["catalogue"] == "SOC 2 Trust Services Criteria"
    # records that name a criterion are counted from the files themselves
    naming_cc61 = sum("CC6.1" in (r["tsc_refs"] or "").split(";") for r in risks)
    assert naming_cc61 == 1 and by[("CC6.1", register.replace(".json", ".csv"), "references")]["rows"] == 1
    leaked = next(path for path in playbook_files if "leaked-credential" in path)
    steps_naming = sum(1 for line in playbook_files[leaked].splitlines()
                       if line.strip().startswith("criteria:") and "A.5.27" in line)
    assert steps_naming == 2 and by[("A.5.27", leaked, "references")]["rows"] == 2
    assert "criteria_index.csv" in rows and "criteria_index.json" in rows
    checked = CliRunner().invoke(main, ["verify", "--bundle", str(bundle)])
    assert checked.exit_code == 0, checked.output


def test_the_documented_mapping_is_the_one_the_bundle_uses():
    text = DOCS.read_text(encoding="utf-8").split("### Criteria index", 1)[1].split("\n### ", 1)[0]
    for pattern, ids, _why in MAPPING:
        line = next((line for line in text.splitlines() if line.startswith(f"| `{pattern}` |")), None)
        assert line is not None, f"docs/audit-evidence.md has no criteria-index row for {pattern}"
        assert line.split("|")[2].strip() == ", ".join(ids), pattern
