#!/usr/bin/env python3
"""Differential test: metrics_reference.py against `callpulse replay`.

    python3 tests/reference/differential.py --seeds 200 --bin target/release/callpulse

For each seed it generates a random valid event file (gen_events.py), computes
the final windows with the reference and with `callpulse replay`, and compares
them field by field, keyed by (practice, window, start); `revision` is
implementation-defined and ignored. Lines that replay rejects are differences
too (the generator writes only valid events). Each kind of difference is
shrunk to a minimal event set (events are dropped while the same difference
persists) and printed. The golden cases in golden/ (expected outputs computed
by hand) are checked against both implementations.

Exit status: 0 if no difference, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_events  # noqa: E402
import metrics_reference as ref  # noqa: E402

HIST = {"wait_hist", "abandon_hist", "talk_hist"}
IGNORED = {"revision"}


def key(r: dict) -> tuple:
    return (r["practice"], r["window"], r["start"])


class Replay:
    def __init__(self, binary: str, calendar: Path | None):
        self.binary = binary
        self.calendar = calendar
        self.timeout = 120
        self.tmp = Path(tempfile.mkdtemp(prefix="cp-diff-"))

    def run(self, lines: list[str]) -> tuple[list[dict], list[str]]:
        ev = self.tmp / "events.jsonl"
        out = self.tmp / "metrics.jsonl"
        ev.write_text("".join(l + "\n" for l in lines))
        if out.exists():
            out.unlink()
        cmd = [self.binary, "replay", "--events", str(ev), "--metrics", str(out)]
        if self.calendar:
            cmd += ["--bank-holidays", str(self.calendar)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        rejected = [l for l in p.stderr.splitlines() if l.startswith("line ")]
        if p.returncode not in (0, 1) or not out.exists():
            raise RuntimeError(f"replay failed ({p.returncode}): {p.stderr[-2000:]}")
        recs = [json.loads(l) for l in out.read_text().splitlines() if l.strip()]
        return recs, rejected


def reference(lines: list[str], holidays) -> list[dict]:
    return ref.compute(ref.read_events(lines), holidays)


def compare(exp: list[dict], act: list[dict]) -> list[tuple]:
    """Differences as (key, field, expected, actual)."""
    e = {key(r): r for r in exp}
    a = {key(r): r for r in act}
    diffs = []
    for k in sorted(set(e) | set(a)):
        if k not in a:
            diffs.append((k, "<window>", "present", "missing"))
            continue
        if k not in e:
            diffs.append((k, "<window>", "absent", "emitted"))
            continue
        for f in ref.FIELDS:
            if f in IGNORED:
                continue
            if e[k].get(f) != a[k].get(f):
                diffs.append((k, f, e[k].get(f), a[k].get(f)))
        extra = set(a[k]) - set(ref.FIELDS)
        if extra:
            diffs.append((k, "<extra fields>", [], sorted(extra)))
    return diffs


def signature(d: tuple) -> str:
    return d[1]  # the field


def diff_lines(lines, replay, holidays, order=False):
    recs, rejected = replay.run(lines)
    out = [(("-", "-", "-"), "<rejected>", "accepted", r) for r in rejected]
    if order:
        # "Results must not depend on the order in which events arrive"
        recs2, _ = replay.run(list(reversed(lines)))
        out += [(k, "<order:" + f + ">", e, a) for k, f, e, a in compare(recs, recs2)]
    return out + compare(reference(lines, holidays), recs)


def shrink(lines: list[str], sig: tuple, replay, holidays) -> list[str]:
    """Drop events while a difference with the same signature persists."""
    def still(ls):
        try:
            return any(signature(d) == sig for d in diff_lines(ls, replay, holidays, sig.startswith("<order")))
        except Exception:
            return False

    cur = list(lines)
    n = 2
    while len(cur) >= 2:
        chunk = max(1, len(cur) // n)
        removed = False
        for i in range(0, len(cur), chunk):
            cand = cur[:i] + cur[i + chunk:]
            if cand and still(cand):
                cur = cand
                n = max(n - 1, 2)
                removed = True
                break
        if not removed:
            if chunk == 1:
                break
            n = min(len(cur), n * 2)
    return cur


def fmt_diff(d) -> str:
    k, f, e, a = d
    return f"  {k[0]} {k[1]} {k[2]} {f}: reference={json.dumps(e)} replay={json.dumps(a)}"


# ---------------------------------------------------------------- golden

def expand_expected(r: dict) -> dict:
    out = {f: 0 for f in ref.FIELDS}
    for h in HIST:
        out[h] = [0] * 10
    out["final"] = True
    out.update(r)
    return out


def check_golden(replay, holidays, gdir: Path) -> int:
    bad = 0
    for ev in sorted(gdir.glob("*.jsonl")):
        if ev.name.endswith(".expected.jsonl"):
            continue
        exp_path = ev.with_name(ev.name[: -len(".jsonl")] + ".expected.jsonl")
        lines = [l for l in ev.read_text().splitlines() if l.strip()]
        expected = [expand_expected(json.loads(l)) for l in exp_path.read_text().splitlines() if l.strip()]
        r_diffs = compare(expected, reference(lines, holidays))
        recs, rejected = replay.run(lines)
        p_diffs = [(("-", "-", "-"), "<rejected>", "accepted", r) for r in rejected] + compare(expected, recs)
        status = "ok" if not r_diffs and not p_diffs else "DIFF"
        print(f"{gdir.name} {ev.name}: {status}")
        for d in r_diffs:
            bad += 1
            k, f, e, a = d
            print(f"  reference wrong: {k} {f}: expected={json.dumps(e)} reference={json.dumps(a)}")
        for d in p_diffs:
            bad += 1
            k, f, e, a = d
            print(f"  replay differs:  {k} {f}: expected={json.dumps(e)} replay={json.dumps(a)}")
    return bad


# (spelling, valid RFC 3339?, instant in UTC ms or None)
SPELLINGS = [
    ("2026-03-29T01:00:00.000Z", True), ("2026-03-29T01:00:00Z", True),
    ("2026-03-29T01:00:00.5Z", True), ("2026-03-29T01:00:00.500000Z", True),
    ("2026-03-29T01:00:00.500999999Z", True), ("2026-03-29T01:00:00.000+00:00", True),
    ("2026-03-29T02:00:00.000+01:00", True), ("2026-03-29T02:00:00+01:00", True),
    ("2026-03-28T20:00:00.000-05:00", True), ("2026-03-29T06:30:00.000+05:30", True),
    ("2026-03-29T01:00:00.000-00:00", True), ("2026-03-29t01:00:00.000z", True),
    ("1999-12-31T23:59:59.999Z", True), ("2101-01-01T00:00:00.000Z", True),
    ("2026-03-29 01:00:00.000Z", False), ("2026-03-29T01:00:00,000Z", False),
    ("2026-03-29T01:00:00.000+0100", False), ("2026-03-29T01:00Z", False),
    ("2026-03-29T01:00:00.Z", False), ("2026-02-29T00:00:00.000Z", False),
    ("2026-03-29T24:00:00.000Z", False), ("2026-03-29T01:00:60.000Z", False),
    ("20260329T010000Z", False), ("2026-03-29T01:00:00.000", False),
]


def spelling_probe(replay) -> int:
    """Which `at` spellings replay accepts; a valid one rejected, or read as
    another instant, is a finding."""
    bad = 0
    for sp, valid in SPELLINGS:
        line = json.dumps({"event_id": "e1", "call_id": "c1", "vendor": "generic",
                           "practice": "A81001", "kind": "offered", "at": sp})
        recs, rejected = replay.run([line])
        got = "rejected" if rejected else "accepted"
        note = ""
        if not rejected:
            m = [r for r in recs if r["window"] == "1m"]
            try:
                want = ref.fmt_ts(ref.parse_ts(sp) // 60000 * 60000)
                if m and m[0]["start"] != want:
                    note = f" READ AS {m[0]['start']} (expected minute {want})"
                    bad += 1
            except ValueError:
                note = f" (1m window {m[0]['start'] if m else '?'})"
        if valid and rejected:
            bad += 1
            note += "  <- valid RFC 3339, rejected: " + rejected[0]
        print(f"  {sp:36s} {'valid  ' if valid else 'invalid'} {got}{note}")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--calls", type=int, default=10, help="calls per generated file")
    ap.add_argument("--bin", default=os.environ.get("CALLPULSE_BIN", "target/release/callpulse"))
    ap.add_argument("--bank-holidays", type=Path, default=None,
                    help="calendar for both sides (default: data/ of the repository)")
    ap.add_argument("--spellings", action="store_true",
                    help="write `at` in varying valid RFC 3339 spellings")
    ap.add_argument("--cross-dup", action="store_true",
                    help="also repeat event_ids on other calls")
    ap.add_argument("--wild", action="store_true",
                    help="also duplicates whose copies differ in kind or caller (at different `at`)")
    ap.add_argument("--ties", action="store_true",
                    help="also duplicate copies that differ but share the same `at` (contract silent on which counts)")
    ap.add_argument("--split-practice", action="store_true",
                    help="also calls whose events name two practices")
    ap.add_argument("--dense", action="store_true", help="all calls around one instant (peak_waiting)")
    ap.add_argument("--findings", action="store_true",
                    help="also check findings/: cases where replay disagreed with metrics.md")
    ap.add_argument("--spelling-probe", action="store_true",
                    help="report which timestamp spellings replay accepts, then exit")
    ap.add_argument("--case", type=Path, default=None,
                    help="compare one events file only (no golden, no seeds)")
    ap.add_argument("--max-shrinks", type=int, default=2, help="shrunk examples per kind of difference")
    ap.add_argument("--no-golden", action="store_true")
    ap.add_argument("--save", type=Path, default=None, help="directory for failing inputs")
    a = ap.parse_args(argv)

    cal = a.bank_holidays or ref.default_calendar()
    holidays = ref.load_bank_holidays(cal)
    replay = Replay(a.bin, cal)

    if a.spelling_probe:
        return 1 if spelling_probe(replay) else 0

    if a.case:
        lines = [l for l in a.case.read_text().splitlines() if l.strip()]
        diffs = diff_lines(lines, replay, holidays, order=True)
        for d in diffs:
            print(fmt_diff(d))
        print(f"{len(diffs)} differences")
        return 1 if diffs else 0

    total_bad = 0
    if not a.no_golden:
        total_bad += check_golden(replay, holidays, HERE / "golden")
    if a.findings:
        total_bad += check_golden(replay, holidays, HERE / "findings")

    shrunk: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    bad_seeds = 0
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        evs = gen_events.generate(seed, a.calls, a.spellings, a.cross_dup, a.wild, a.dense, a.ties,
                                   a.split_practice)
        lines = [json.dumps(e, separators=(",", ":")) for e in evs]
        diffs = diff_lines(lines, replay, holidays, order=True)
        if not diffs:
            continue
        bad_seeds += 1
        total_bad += len(diffs)
        if a.save:
            a.save.mkdir(parents=True, exist_ok=True)
            (a.save / f"seed{seed}.jsonl").write_text("".join(l + "\n" for l in lines))
        sigs = {}
        for d in diffs:
            sigs.setdefault(signature(d), d)
            counts[signature(d)] = counts.get(signature(d), 0) + 1
        print(f"seed {seed}: {len(diffs)} differences in {len(lines)} events")
        for sig, d in sigs.items():
            print(fmt_diff(d))
            if shrunk.get(sig, 0) >= a.max_shrinks:
                continue
            shrunk[sig] = shrunk.get(sig, 0) + 1
            small = shrink(lines, sig, replay, holidays)
            print(f"  minimal events ({len(small)}) for {sig}:")
            for l in small:
                print("    " + l)
            for d2 in diff_lines(small, replay, holidays, sig.startswith("<order")):
                if signature(d2) == sig:
                    print("  " + fmt_diff(d2).strip())
    print(f"\n{a.seeds} seeds, {bad_seeds} with differences, {total_bad} differences in all")
    for sig, n in sorted(counts.items(), key=lambda x: -x[1]):
        print(f"  {n:6d}  {sig}")
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
