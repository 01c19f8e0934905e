"""Evidence bundle and `vigil verify`: time and peak memory of `vigil export bundle`, `vigil verify --bundle`
and `vigil verify` (chains + state fold on the database), half vs full data.

    .venv/bin/python bench/bundle.py                 # 1/10 scale: 200 incidents x 200 events, 500 risks x 4 reviews
    .venv/bin/python bench/bundle.py --full          # the issue's year: 2,000 incidents x 200 events, 5,000 risks x 4
    .venv/bin/python bench/bundle.py --scale 0.25
    .venv/bin/python bench/bundle.py --scale 0.25 --baseline e34608e   # the export of another revision, same run
    .venv/bin/python bench/bundle.py --verify BUNDLE.zip --checker-baseline 628bcc9   # verify --bundle vs its floors

A year of data is generated through the domain functions (vigil_ir.incidents.service, vigil_ir.risks.service
and vigil_ir.risks.reviews) into a temporary SQLite database: incidents spread evenly over 2025, each with
200 events; risks created in January and reviewed every quarter. "Half" is the bundle for the first
six months (half the incidents and events, half the reviews), "full" the whole year, so the growth
column shows how cost grows with the period. Each command runs as its own process, which reports
its peak RSS (VmHWM) at exit; a `vigil --version` process gives the interpreter + import baseline.
The export's other processes (its two incident processes, the forkserver they are forked from) are
sampled from /proc every 20 ms: their CPU time is added to the export's, and the largest of their
peaks is shown beside the exporting process's.

`--baseline REV` also exports both periods with the code of git revision REV (its `bot/`, `migrations/`
and `playbooks/` unpacked as `vigil_ir` into a temporary folder that comes first on PYTHONPATH) from the
same database in the same run, and prints before/after: time, peak RSS, zip size and uncompressed bytes;
the baseline's bundles are checked with today's `vigil verify --bundle` too (an older layout still verifies).

Baseline in the same run: the bundle's event rows hashed again with raw hashlib (sha256 of
prev_hash + canonical JSON, the bytes verify hashes) plus raw sha256 over every file's bytes; the
verify/raw ratio is what the bundle checks (parsing, linkage, manifest) cost on top of hashing.
`vigil verify` on the database is measured the same way after each half of the data is generated
(the same log at two sizes): its time and peak RSS, and its time over hashlib alone on the same
canonical bytes (every event's prev_hash + canonical JSON). For each bundle, `verify --bundle` is also set
against its floors, each timed alone: zlib inflating every member, json.loads of every row, csv.reader of
every CSV file, raw sha256; with the standalone checker (`python verify.py`) as a process. Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

YEAR = datetime(2025, 1, 1, tzinfo=timezone.utc)
EVENTS_PER_INCIDENT = 200
REVIEWS_PER_RISK = 4
REVIEW_DAYS = (date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1), date(2025, 12, 31))
PERIODS = {"half": ("2025-01-01", "2025-06-30"), "full": ("2025-01-01", "2025-12-31")}


def ticking(start: datetime):
    """A clock for clock.frozen that moves one second per reading: events get distinct, ordered times."""
    state = {"at": start}

    def now():
        state["at"] += timedelta(seconds=1)
        return state["at"]
    return now


def make_incidents(db, count: int, rng: random.Random, part: range | None = None) -> None:
    from vigil_ir import clock
    from vigil_ir.incidents import service

    notes = EVENTS_PER_INCIDENT - 7  # declare, lead, identified, monitoring + update, resolve, close
    for index in part or range(count):
        declared = YEAR + timedelta(days=365 * index / max(count, 1), hours=9)
        with clock.frozen(ticking(declared)), db.session() as s:
            incident = service.declare(s, actor="U0DECL", title=f"Incident {index}: checkout errors",
                                       severity=rng.choice(("sev1", "sev2", "sev3", "sev4")),
                                       type=rng.choice(("availability", "security", "other")))
            service.assign_role(s, incident=incident, actor="U0DECL", role="lead", user="U0LEAD")
            service.set_status(s, incident=incident, actor="U0LEAD", status="identified")
            for note in range(notes):
                service.add_note(s, incident=incident, actor=rng.choice(("U0LEAD", "U0ENG1", "U0ENG2")),
                                 text=f"Checked shard {note}: latency {rng.randint(20, 900)} ms, error rate "
                                      f"{rng.random():.3f}; next step is the load balancer pool.")
            service.post_update(s, incident=incident, actor="U0LEAD", status="monitoring", summary="Mitigated")
            service.resolve(s, incident=incident, actor="U0LEAD")
            service.close(s, incident=incident, actor="U0LEAD", admins=frozenset(), customer_impact="Errors",
                          root_cause="Bad deploy", lessons_learned="Canary")


def make_risks(db, count: int, rng: random.Random, part: range | None = None) -> None:
    from sqlmodel import select

    from vigil_ir import clock
    from vigil_ir.risks import reviews, service
    from vigil_ir.risks.models import Risk, RiskReview

    part = part or range(count)
    for index in part:
        created = YEAR + timedelta(days=index * 28 / max(count, 1), hours=10)
        likelihood, impact = rng.randint(1, 5), rng.randint(1, 5)
        with clock.frozen(ticking(created)), db.session() as s:
            service.create(s, actor="U0OWNER", raw={
                "title": f"Risk {index}", "statement": "Because of X, Y may happen, leading to Z.",
                "category": rng.choice(("security", "availability", "vendor")), "risk_type": "internal",
                "owner": "U0OWNER", "inherent_likelihood": str(likelihood), "inherent_impact": str(impact),
                "residual_likelihood": str(max(1, likelihood - 1)), "residual_impact": str(impact),
                "treatment": "mitigate", "treatment_plan": "Controls", "cadence": "quarterly"})
    for day in REVIEW_DAYS[:REVIEWS_PER_RISK]:
        with clock.frozen(ticking(datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(hours=11))):
            for offset in range(part.start, part.stop, 200):  # risk numbers are index + 1
                with db.session() as s:
                    for risk in s.exec(select(Risk).where(Risk.number > offset, Risk.number <= min(offset + 200,
                                                                                                     part.stop))
                                       .order_by(Risk.number)):
                        review = s.exec(select(RiskReview).where(RiskReview.risk_id == risk.id,
                                                                 RiskReview.status == "open")
                                        .order_by(RiskReview.due_on)).first()
                        reviews.complete(s, risk=risk, review=review, actor="U0OWNER", approvers=frozenset(),
                                         given={"outcome": "no_change", "rationale": "Controls still in place."})


# Runs `vigil` and, at exit, writes the process's own peak RSS. VmHWM is the peak of this program's
# memory; ru_maxrss would also count the parent's pages the child had before exec (Linux keeps the
# larger), so it is only the fallback where /proc is missing.
VIGIL = """
import atexit, os
def peak():
    kib = None
    try:
        with open("/proc/self/status") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(str(kib))
atexit.register(peak)
from vigil_ir.cli import main
main()
"""


LAST_CPU = {"seconds": 0.0}  # CPU time (user + system, every thread) of the last measured process and its helpers
# The export's other processes: largest peak RSS, how many; and the most PSS all its processes held at once.
LAST_OTHERS = {"peak_mib": 0.0, "processes": 0, "together_mib": 0.0}
SAMPLE_EVERY = 0.02  # seconds between looks at the other processes (their last moments are not counted)
PSS_EVERY = 5  # reading every process's smaps_rollup costs more: every fifth look (0.1 s)
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        for task in Path(f"/proc/{stack.pop()}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            stack += children
    return found


def _cpu_and_peak(pid: int) -> tuple[float, int] | None:
    """(own user + system seconds, VmHWM KiB) of a running process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    peak = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return (int(fields[11]) + int(fields[12])) / TICKS, peak


def _pss_kib(pid: int) -> int:
    """Proportional set size: a page shared by N processes counts 1/N in each (so the sum over processes
    forked from one another is the memory they hold together; their RSS would count shared pages twice)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")), 0)


def _watch_helpers(pid: int, seen: dict[int, tuple[float, int]], done, together: dict[str, int]) -> None:
    """Sample the processes `pid` started (the bundle's incident processes, their forkserver and the
    resource tracker): none of them is waited for by `pid`, so its rusage leaves them out. Every
    PSS_EVERY-th look also sums the PSS of `pid` and all of them: the most held at once."""
    looks = 0
    while not done.wait(SAMPLE_EVERY):
        looks += 1
        if looks % PSS_EVERY == 0:
            together["pss_kib"] = max(together.get("pss_kib", 0), sum(map(_pss_kib, [pid, *_descendants(pid)])))
        for child in _descendants(pid):
            sample = _cpu_and_peak(child)
            if sample is not None:
                seen[child] = (max(seen.get(child, (0.0, 0))[0], sample[0]), max(seen.get(child, (0.0, 0))[1], sample[1]))


def run_measured(args: list[str], env: dict[str, str], work: Path, cwd: Path = ROOT) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout+stderr) of one `vigil` process; its CPU time, with that of the
    processes it started (sampled), in LAST_CPU; their largest peak RSS in LAST_OTHERS (on a shared
    machine the CPU time moves far less than the wall time)."""
    import resource
    import threading

    peak_file = work / "peak.txt"
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", VIGIL, *args], env={**env, "BENCH_PEAK_FILE": str(peak_file)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    seen: dict[int, tuple[float, int]] = {}
    together: dict[str, int] = {}
    done = threading.Event()
    watcher = threading.Thread(target=_watch_helpers, args=(process.pid, seen, done, together), daemon=True)
    watcher.start()
    output = process.communicate()[0]
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU["seconds"] = ((after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
                           + sum(cpu for cpu, _ in seen.values()))
    LAST_OTHERS.update(peak_mib=max((peak for _, peak in seen.values()), default=0) / 1024, processes=len(seen),
                       together_mib=together.get("pss_kib", 0) / 1024)
    if process.returncode != 0:
        raise SystemExit(f"vigil {' '.join(args)} failed:\n{output.decode()}")
    return seconds, int(peak_file.read_text()) / 1024, output.decode()


def raw_hash_seconds(bundle: Path) -> tuple[float, float, int]:
    """Hash the bundle's event canonical bytes and every file's bytes with hashlib alone; (events s, files s, events)."""
    from vigil_ir.eventlog.canonical import canonical_json, hashed_view
    from vigil_ir.exports.eventlog_export import hashed_fields

    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    event_seconds = file_seconds = 0.0
    events = 0
    with zipfile.ZipFile(bundle) as archive:
        for entry in manifest["files"]:
            data = archive.read(entry["path"])
            started = time.perf_counter()
            hashlib.sha256(data).hexdigest()
            file_seconds += time.perf_counter() - started
            if entry["path"] not in manifest["event_log"]["segments"]:
                continue
            rows = [json.loads(line.rstrip(",")) for line in data.decode().splitlines() if line.startswith("{")]
            payloads = [(fields["prev_hash"] + canonical_json(hashed_view(fields))).encode()
                        for fields in map(hashed_fields, rows)]
            started = time.perf_counter()
            for payload in payloads:
                hashlib.sha256(payload).hexdigest()
            event_seconds += time.perf_counter() - started
            events += len(payloads)
    return event_seconds, file_seconds, events


def verify_in_process(bundle: Path) -> float:
    """CPU seconds of `vigil verify --bundle`'s check (vigil_ir.exports.bundle.verification) in this process."""
    from vigil_ir.exports.bundle.verification import verify_bundle

    started = time.process_time()
    check = verify_bundle(bundle)
    seconds = time.process_time() - started
    if not check.ok:
        raise SystemExit(f"verify failed: {check.problems[:5]}")
    return seconds


def standalone_checker_seconds(bundle: Path, checker: Path | None = None) -> tuple[float, bool]:
    """(CPU seconds, passed) of `python verify.py BUNDLE` as its own process: this tree's checker (what an
    export ships as verify.py), or `checker` (another revision's checker.py: it is standard library only,
    so it runs as it is)."""
    import resource

    from vigil_ir.exports.bundle.verification import standalone_source

    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "verify.py"
        script.write_bytes(checker.read_bytes() if checker else standalone_source())
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([sys.executable, "-I", "-S", str(script), str(bundle)], capture_output=True, cwd=folder)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime), done.returncode == 0


def member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes as stored in the zip (compressed), read past its local header."""
    import struct

    archive.fp.seek(info.header_offset)
    header = archive.fp.read(30)
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    archive.fp.seek(info.header_offset + 30 + name_length + extra_length)
    return archive.fp.read(info.compress_size)


def verify_floors(bundle: Path) -> dict:
    """CPU seconds of what any check of every byte of the bundle must do at least, each step timed alone
    on bytes prepared before: zlib inflating every member, json.loads of every row of every JSON table
    (one object per line) and of every other JSON document, csv.reader over every CSV file (its cells are
    compared with the JSON twin). Raw sha256 of the same bytes is `raw_hash_seconds`."""
    import csv
    import zlib

    inflate = json_seconds = csv_seconds = 0.0
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        listed = {entry["path"]: entry for entry in manifest["files"]}
        logs = {*manifest["event_log"]["segments"], manifest["event_log"]["heads"].get("file")}
        for info in archive.infolist():
            stored = member_bytes(archive, info)
            started = time.process_time()
            data = zlib.decompressobj(-15).decompress(stored) if info.compress_type == zipfile.ZIP_DEFLATED else stored
            inflate += time.process_time() - started
            name = info.filename
            if name.endswith(".json"):
                table = name in logs or (listed.get(name, {}).get("rows") is not None and name[:-5] + ".csv" in listed)
                started = time.process_time()
                if table:
                    for line in data.decode("utf-8").split("\n"):
                        if line.startswith("{"):
                            json.loads(line[:-1] if line.endswith(",") else line)
                else:
                    json.loads(data.decode("utf-8"))
                json_seconds += time.process_time() - started
            elif name.endswith(".csv"):
                started = time.process_time()
                for _ in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")):
                    pass
                csv_seconds += time.process_time() - started
    return {"inflate": inflate, "json_parse": json_seconds, "csv_parse": csv_seconds}


def measure_bundle_verify(bundle: Path, checker: Path | None = None) -> dict:
    """`vigil verify --bundle`'s check in process and the bundle's verify.py as a process (CPU), against raw
    hashing and the floors, on one bundle; with `checker` (another revision's checker.py), that one too."""
    raw_events, raw_files, events = raw_hash_seconds(bundle)
    result = {"events": events, "raw": raw_events + raw_files, "raw_events": raw_events, "raw_files": raw_files,
              **verify_floors(bundle), "verify_in_process": verify_in_process(bundle)}
    result["floor"] = result["raw"] + result["inflate"] + result["json_parse"] + result["csv_parse"]
    result["standalone_cpu"], passed = standalone_checker_seconds(bundle)
    if not passed:
        raise SystemExit(f"verify.py found problems in {bundle}")
    if checker is not None:
        result["baseline_cpu"], result["baseline_passed"] = standalone_checker_seconds(bundle, checker)
    return result


def report_bundle_verify(name: str, r: dict, baseline: str | None = None) -> None:
    print(f"\n`vigil verify --bundle` ({name}): {r['events']} event rows, CPU seconds")
    rows = [("verify --bundle, in process", r["verify_in_process"]),
            ("verify.py (this tree's), as a process", r["standalone_cpu"])]
    if "baseline_cpu" in r:
        rows.append((f"verify.py of {baseline}, as a process", r["baseline_cpu"]))
    rows += [("raw sha256: every event's hashed text", r["raw_events"]),
             ("raw sha256: every file's bytes", r["raw_files"]), ("zlib inflate of every member", r["inflate"]), ("json.loads of every row / document", r["json_parse"]),
             ("csv.reader of every CSV file", r["csv_parse"]), ("floor: the four above", r["floor"])]
    for label, seconds in rows:
        print(f"  {label:40}{seconds:8.3f}  {seconds / r['raw']:6.1f}x raw  {seconds / r['floor']:5.2f}x floor")
    print(f"  {r['events'] / r['verify_in_process'] / 1000:.0f}k events/s in process; 5x raw hashing would be "
          f"{5 * r['raw']:.3f} s, the floor alone is {r['floor'] / r['raw']:.1f}x raw"
          + ("" if "baseline_cpu" not in r else f"; {baseline}'s checker "
             f"{'passed' if r['baseline_passed'] else 'FAILED'}"))


def unpack_revision(revision: str, work: Path) -> Path:
    """The code of `revision` laid out as the installed package (`vigil_ir` = bot/, with migrations/ and
    playbooks/ beside as setup.py maps them); returns the folder to put first on PYTHONPATH."""
    import tarfile

    target = work / f"baseline-{revision}"
    if target.exists():
        return target
    archive = subprocess.run(["git", "archive", revision, "bot", "migrations", "playbooks"], cwd=ROOT, check=True,
                             stdout=subprocess.PIPE).stdout
    source = work / f"baseline-{revision}-tree"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    (target / "vigil_ir").parent.mkdir(parents=True, exist_ok=True)
    (source / "bot").rename(target / "vigil_ir")
    (source / "migrations").rename(target / "vigil_ir" / "migrations")
    (source / "playbooks").rename(target / "vigil_ir" / "shipped_playbooks")
    return target


def bundle_bytes(bundle: Path) -> tuple[int, int]:
    """(uncompressed bytes of every file, files) of a bundle."""
    with zipfile.ZipFile(bundle) as archive:
        infos = archive.infolist()
    return sum(info.file_size for info in infos), len(infos)


def measure_export(name: str, start: str, end: str, env: dict[str, str], work: Path, label: str,
                   code: Path | None = None) -> dict:
    """One `vigil export bundle` of a period (with the code in `code` first on the path, if given)."""
    bundle = work / f"{name}-{label}.zip"
    run_env = {**env, "PYTHONPATH": str(code)} if code else env
    seconds, rss, _ = run_measured(["export", "bundle", "--from", start, "--to", end, "-o", str(bundle)], run_env,
                                   work, cwd=code or ROOT)
    uncompressed, files = bundle_bytes(bundle)
    return {"bundle": bundle, "export_s": seconds, "export_cpu": LAST_CPU["seconds"], "export_rss": rss,
            "export_others_rss": LAST_OTHERS["peak_mib"], "export_processes": 1 + LAST_OTHERS["processes"],
            "export_together": LAST_OTHERS["together_mib"],
            "mib": bundle.stat().st_size / 2**20,
            "raw_mib": uncompressed / 2**20, "files": files}


def rows_of(bundle: Path, prefix: str) -> int:
    manifest = json.loads(zipfile.ZipFile(bundle).read("manifest.json"))
    return sum(e["rows"] or 0 for e in manifest["files"] if e["path"].startswith(prefix) and e["path"].endswith(".json"))


def database_raw_hash_seconds(url: str) -> tuple[float, int]:
    """Every event in the database: its canonical bytes (prev_hash + canonical JSON, what verify hashes)
    prepared first, then only hashlib timed, a chunk at a time; (seconds, events)."""
    from sqlalchemy import select

    from vigil_ir.db import Database
    from vigil_ir.eventlog.canonical import canonical_json, hashed_view
    from vigil_ir.eventlog.models import Event

    db, seconds, events = Database(url), 0.0, 0
    table = Event.__table__
    with db.read_session() as session:
        rows = session.execute(select(table).order_by(table.c.stream, table.c.stream_seq)
                               .execution_options(yield_per=10_000))
        for chunk in rows.partitions():
            payloads = [(row.prev_hash + canonical_json(hashed_view(row._mapping))).encode() for row in chunk]
            started = time.perf_counter()
            for payload in payloads:
                hashlib.sha256(payload).hexdigest()
            seconds += time.perf_counter() - started
            events += len(payloads)
    db.dispose()
    return seconds, events


def database_read_seconds(url: str) -> float:
    """The floor under any walk of the log from Python: every event row read through the sqlite3 module
    alone (the columns verify reads, as stored text), nothing done with them."""
    import sqlite3

    connection = sqlite3.connect(url.removeprefix("sqlite:///"))
    started = time.perf_counter()
    cursor = connection.execute("SELECT id, stream, stream_seq, kind, actor, occurred_at, recorded_at, data, corrects, "
                                "prev_hash, hash FROM event ORDER BY stream, stream_seq")
    while cursor.fetchmany(1000):
        pass
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def verify_database_in_process(url: str) -> tuple[float, float, int]:
    """(chain only s, chain + state fold s, state differences) of `vigil verify`'s walk, in this process."""
    from vigil_ir.db import Database
    from vigil_ir.eventlog.verify import verify_database
    from vigil_ir.state_check import checker

    db = Database(url)
    with db.read_session() as session:
        started = time.perf_counter()
        assert verify_database(session).ok
        chain = time.perf_counter() - started
        started = time.perf_counter()
        state = checker(session)
        assert verify_database(session, observe=state.feed).ok
        differences = len(state.finish())
        both = time.perf_counter() - started
    db.dispose()
    return chain, both, differences


def measure_verify(url: str, env: dict[str, str], work: Path) -> dict:
    """`vigil verify` on the live database (chains + state fold): process time and peak RSS, and the ratio
    to hashing the same canonical bytes with hashlib alone."""
    seconds, rss, output = run_measured(["verify"], env, work)
    if "OK:" not in output:
        raise SystemExit(f"vigil verify did not pass:\n{output}")
    raw, events = database_raw_hash_seconds(url)
    read = database_read_seconds(url)
    chain, both, differences = verify_database_in_process(url)
    if differences:
        raise SystemExit(f"the state fold found {differences} differences in generated data")
    return {"events": events, "verify_s": seconds, "verify_rss": rss, "raw": raw, "chain_in_process": chain,
            "fold_in_process": both, "read": read, "db_mib": (work / "bench.db").stat().st_size / 2**20}


def generate(url: str, incidents: int, risks: int, scale: float, work: Path, env: dict[str, str]) -> dict:
    """Generate the year in two halves (by index: the halves are interleaved in time), measuring
    `vigil verify` on the database after each: the same log at two sizes."""
    from vigil_ir.db import Database, migrate

    migrate(url)
    db = Database(url)
    rng = random.Random(2025)
    started = time.perf_counter()
    sizes = {}
    made_incidents = 0.0
    for name, (incident_part, risk_part) in (
            ("half", (range(0, incidents // 2), range(0, risks // 2))),
            ("full", (range(incidents // 2, incidents), range(risks // 2, risks)))):
        begun = time.perf_counter()
        make_incidents(db, incidents, rng, incident_part)
        made_incidents += time.perf_counter() - begun
        make_risks(db, risks, rng, risk_part)
        sizes[name] = measure_verify(url, env, work)
        report_verify({name: sizes[name]})  # printed at once: the bundle part below takes longer
    db.dispose()
    print(f"data: {incidents} incidents x {EVENTS_PER_INCIDENT} events ({made_incidents:.0f} s), {risks} risks x "
          f"{REVIEWS_PER_RISK} reviews ({time.perf_counter() - started - made_incidents:.0f} s), scale {scale:g}; "
          f"database {(work / 'bench.db').stat().st_size / 2**20:.0f} MiB in {work}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of the issue's year (default 0.1)")
    parser.add_argument("--full", action="store_true", help="the issue's full year (same as --scale 1)")
    parser.add_argument("--keep", type=Path, help="keep the database and bundles in this folder")
    parser.add_argument("--reuse", action="store_true", help="with --keep: use the database already there")
    parser.add_argument("--baseline", metavar="REV", help="also export with the code of this git revision, same run")
    parser.add_argument("--verify", type=Path, metavar="BUNDLE",
                        help="only measure `verify --bundle` of this bundle against raw hashing and the floors")
    parser.add_argument("--checker-baseline", metavar="REV",
                        help="with --verify: also run the standalone checker of this git revision on it")
    options = parser.parse_args()
    if options.verify:
        checker = None
        if options.checker_baseline:
            checker = Path(tempfile.mkdtemp(prefix="vigil-bench-checker-")) / "verify.py"
            source = f"{options.checker_baseline}:bot/exports/bundle/checker.py"
            checker.write_bytes(subprocess.run(["git", "show", source], cwd=ROOT, check=True,
                                               stdout=subprocess.PIPE).stdout)
        measured = measure_bundle_verify(options.verify, checker)
        report_bundle_verify(str(options.verify), measured, options.checker_baseline)
        return
    scale = 1.0 if options.full else options.scale
    incidents, risks = max(2, round(2000 * scale)), max(2, round(5000 * scale))
    work = options.keep or Path(tempfile.mkdtemp(prefix="vigil-bench-bundle-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'bench.db'}"
    env = {**os.environ, "DATABASE_URL": url, "VIGIL_SIGNING_KEY_FILE": str(work / "signing-key.pem")}
    if not (options.reuse and (work / "bench.db").exists()):
        sizes = generate(url, incidents, risks, scale, work, env)
    else:
        sizes = {"full": measure_verify(url, env, work)}
        report_verify(sizes)
    base_s, base_rss, _ = run_measured(["--version"], env, work)
    code = unpack_revision(options.baseline, work) if options.baseline else None
    results, before = {}, {}
    for name, (start, end) in PERIODS.items():
        if code is not None:  # the baseline first, so neither run finds the other's files in the page cache
            before[name] = measure_export(name, start, end, env, work, "before", code)
            seconds, _, output = run_measured(["verify", "--bundle", str(before[name]["bundle"])], env, work)
            before[name]["verify_s"], before[name]["verified"] = seconds, output.startswith("OK")
        now = measure_export(name, start, end, env, work, "now")
        bundle = now["bundle"]
        verify_s, verify_rss, _ = run_measured(["verify", "--bundle", str(bundle)], env, work)
        results[name] = {**now, "incidents": rows_of(bundle, "incidents.json"),
                         "risks": rows_of(bundle, "risk_register_"), "reviews": rows_of(bundle, "risk_reviews"),
                         "verify_s": verify_s, "verify_rss": verify_rss, **measure_bundle_verify(bundle)}
    report(results, base_s, base_rss)
    for name in results:
        report_bundle_verify(name, results[name])
    if before:
        report_before_after(before, results, options.baseline)
    report_verify(sizes)


def report_before_after(before: dict, after: dict, revision: str) -> None:
    print(f"\n`vigil export bundle`, revision {revision} (before) and this tree (after), same database, same run")
    print(f"{'':30}{'before':>11}{'after':>11}{'after/before':>14}")
    rows = [("export, s (process)", "export_s", "{:.2f}"),
            ("export CPU, s (all processes)", "export_cpu", "{:.2f}"), ("processes", "export_processes", "{:.0f}"),
            ("export peak RSS, MiB", "export_rss", "{:.0f}"), ("others' largest peak, MiB", "export_others_rss", "{:.0f}"),
            ("all at once, PSS MiB", "export_together", "{:.0f}"),
            ("zip size, MiB", "mib", "{:.1f}"), ("uncompressed, MiB", "raw_mib", "{:.0f}"), ("files", "files", "{:.0f}")]
    for name in before:
        print(f"{name}:")
        for label, key, form in rows:
            was, now = before[name][key], after[name][key]
            print(f"  {label:28}{form.format(was):>11}{form.format(now):>11}{now / was if was else float('nan'):>13.2f}x")
        print(f"  the before bundle checked by today's `vigil verify --bundle`: "
              f"{'OK' if before[name]['verified'] else 'FAILED'} ({before[name]['verify_s']:.2f} s)")
    for label, data in (("before", before), ("after", after)):
        print(f"growth full/half, {label}: time {data['full']['export_s'] / data['half']['export_s']:.2f}x, CPU "
              f"{data['full']['export_cpu'] / data['half']['export_cpu']:.2f}x, peak RSS "
              f"{data['full']['export_rss'] / data['half']['export_rss']:.2f}x, zip "
              f"{data['full']['mib'] / data['half']['mib']:.2f}x")


def report_verify(sizes: dict) -> None:
    print("\n`vigil verify` on the database (every chain + the state fold of every record)")
    print(f"{'':34}" + "".join(f"{name:>13}" for name in sizes))
    rows = [("events in the log", "events", "{:.0f}"), ("database, MiB", "db_mib", "{:.0f}"),
            ("vigil verify, s (process)", "verify_s", "{:.2f}"), ("vigil verify peak RSS, MiB", "verify_rss", "{:.0f}"),
            ("chains only, s (in process)", "chain_in_process", "{:.2f}"),
            ("chains + state fold, s (in process)", "fold_in_process", "{:.2f}"),
            ("raw hashlib of the same bytes, s", "raw", "{:.3f}"),
            ("reading the rows alone (sqlite3), s", "read", "{:.3f}")]
    for label, key, form in rows:
        print(f"{label:34}" + "".join(f"{form.format(sizes[name][key]):>13}" for name in sizes))
    for name, r in sizes.items():
        print(f"verify / raw hashlib ({name}): {r['fold_in_process'] / r['raw']:.1f}x in process, "
              f"{r['verify_s'] / r['raw']:.1f}x as a process; the state fold adds "
              f"{(r['fold_in_process'] / r['chain_in_process'] - 1) * 100:.0f} % to the chain walk; reading the "
              f"rows alone is {r['read'] / r['raw']:.1f}x raw hashlib, {r['events'] / r['chain_in_process'] / 1000:.0f}k "
              f"events/s for the chains, {r['events'] / r['fold_in_process'] / 1000:.0f}k with the fold")


def report(results: dict, base_s: float, base_rss: float) -> None:
    half, full = results["half"], results["full"]
    rows = [("incidents in the period", "incidents", "{:.0f}"), ("event rows hashed (E2 + E11)", "events", "{:.0f}"),
            ("risks in the register (E7)", "risks", "{:.0f}"), ("reviews in the log (E8)", "reviews", "{:.0f}"),
            ("files in the zip", "files", "{:.0f}"), ("bundle size, MiB", "mib", "{:.1f}"),
            ("uncompressed, MiB", "raw_mib", "{:.0f}"),
            ("export bundle, s (process)", "export_s", "{:.2f}"),
            ("export CPU, s (all processes)", "export_cpu", "{:.2f}"), ("export processes", "export_processes", "{:.0f}"),
            ("export peak RSS, MiB", "export_rss", "{:.0f}"),
            ("others' largest peak RSS, MiB", "export_others_rss", "{:.0f}"),
            ("all processes at once, PSS MiB", "export_together", "{:.0f}"),
            ("verify --bundle, s (process)", "verify_s", "{:.2f}"), ("verify peak RSS, MiB", "verify_rss", "{:.0f}"),
            ("verify CPU, s (in process)", "verify_in_process", "{:.2f}"),
            ("raw hashlib: events + files, s", "raw", "{:.3f}")]
    print(f"\n{'':34}{'half (H1)':>12}{'full (year)':>13}{'full/half':>11}")
    for label, key, form in rows:
        ratio = full[key] / half[key] if half[key] else float("nan")
        print(f"{label:34}{form.format(half[key]):>12}{form.format(full[key]):>13}{ratio:>10.2f}x")
    for name in ("half", "full"):
        r = results[name]
        print(f"verify / raw hashlib ({name}): {r['verify_in_process'] / r['raw']:.1f}x  "
              f"(raw: {r['raw_events']:.3f} s events, {r['raw_files']:.3f} s files)")
    print(f"process baseline (`vigil --version`): {base_s:.2f} s, {base_rss:.0f} MiB peak RSS")


if __name__ == "__main__":
    main()
