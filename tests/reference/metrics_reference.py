#!/usr/bin/env python3
"""Independent reference implementation of the callpulse measurement contract.

Reads canonical call events (JSONL, metrics.md section 1) and writes every
final window record (metrics.md section 4), one JSON object per line.

Written from metrics.md only (not from the Rust code). Python 3.11 standard
library only.

Readings of the contract that are choices (each is marked "CHOICE" below):

* Histogram bounds are in seconds, durations in milliseconds; a duration of
  `ms` milliseconds falls in the first bucket whose bound satisfies
  `ms <= bound * 1000` (exact integer comparison, no rounding): 10000 ms is in
  the 10 s bucket, 10001 ms in the 30 s bucket.
* Core hours are the half-open interval [08:00:00.000, 18:30:00.000) London
  local time: 08:00:00.000 is in core hours, 18:30:00.000 is not.
* Duplicates are detected by `event_id` alone, across the whole input
  ("unique per event. A repeat of an event_id is a duplicate").
  Among copies that differ, the earliest `at` counts. Copies with the same
  earliest `at` that differ otherwise are not decided by the contract; the
  reference then keeps the copy whose kind comes first in the kind table of
  section 1 (offered, queued, answered, callback_requested, abandoned, missed,
  ivr_ended, diverted_111, ended, callback_made, divert_111_on/off), then a
  copy without caller, then the smaller caller, then the smallest canonical
  JSON. (The kind and caller order is what replay was
  observed to do; it is order-independent, as the contract requires.)
* A call is (vendor, call_id). Its practice is the practice of its events
  (valid input keeps it constant); the reference uses the practice of each
  event for that event's own counts, and the practice of the wait-start
  event for peak_waiting.
* Only the counted outcome of a call contributes to outcome counts and
  durations; an ignored (conflicting) `callback_requested` gives no callback
  delay.
* `ended`: 0..1 per call; if several (invalid input) the earliest counts.
* `unique_callers`: distinct `caller` values of the counted `offered` events
  in the window.
* peak_waiting: every call with a counted outcome and a wait start waits on
  [wait start, outcome.at), whatever the outcome kind.
* Timestamps: RFC 3339 with `Z` or a numeric offset, converted to UTC,
  fractional digits beyond milliseconds truncated.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc
BOUNDS_S = [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, None]  # None = +inf
OUTCOMES = {"answered", "callback_requested", "abandoned", "missed", "ivr_ended", "diverted_111"}
KINDS = OUTCOMES | {"offered", "queued", "ended", "callback_made", "divert_111_on", "divert_111_off"}
PRACTICE_LEVEL = {"divert_111_on", "divert_111_off"}
KIND_ORDER = ["offered", "queued", "answered", "callback_requested", "abandoned", "missed",
              "ivr_ended", "diverted_111", "ended", "callback_made", "divert_111_on", "divert_111_off"]

FIELDS = [
    "practice", "window", "start", "end", "revision", "final",
    "offered", "answered", "callback_requested", "abandoned", "missed",
    "ivr_ended", "diverted_111", "diverted_111_core", "callbacks_made",
    "unique_callers", "peak_waiting",
    "wait_count", "wait_ms_sum", "wait_ms_max", "wait_hist",
    "abandon_count", "abandon_ms_sum", "abandon_ms_max", "abandon_hist",
    "talk_count", "talk_ms_sum", "talk_ms_max", "talk_hist",
    "callback_delay_count", "callback_delay_ms_sum",
    "dq_duplicates", "dq_conflicts",
]

_TS = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_ts(s: str) -> int:
    """RFC 3339 -> milliseconds since the Unix epoch (UTC)."""
    m = _TS.match(s)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {s!r}")
    y, mo, d, h, mi, se, frac, off = m.groups()
    if off in ("Z", "z"):
        tz = UTC
    else:
        sign = 1 if off[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))
    ms = int((frac or "0")[:3].ljust(3, "0"))  # truncate sub-millisecond digits
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se), tzinfo=tz)
    return int(dt.timestamp()) * 1000 + ms


def fmt_ts(ms: int) -> str:
    assert ms % 1000 == 0
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bucket(ms: int) -> int:
    for i, b in enumerate(BOUNDS_S):
        if b is None or ms <= b * 1000:  # CHOICE: exact ms comparison
            return i
    raise AssertionError


# ---------------------------------------------------------------- calendar

def load_bank_holidays(path: Path) -> set[date]:
    data = json.loads(path.read_text())
    out: set[date] = set()
    for div in data.values():
        if isinstance(div, dict) and div.get("division") == "england-and-wales":
            for e in div["events"]:
                out.add(date.fromisoformat(e["date"]))
    if not out:  # tolerate a file holding only the division
        for e in data.get("events", []):
            out.add(date.fromisoformat(e["date"]))
    return out


def london(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(LONDON)


def in_core_hours(ms: int, holidays: set[date]) -> bool:
    lt = london(ms)
    if lt.weekday() >= 5 or lt.date() in holidays:
        return False
    mins = lt.hour * 60 + lt.minute
    # CHOICE: [08:00, 18:30)
    return 8 * 60 <= mins < 18 * 60 + 30


def london_midnight_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=LONDON).timestamp() * 1000)


def windows_of(ms: int) -> list[tuple[str, int, int]]:
    out = []
    for name, size in (("1m", 60_000), ("15m", 900_000), ("1h", 3_600_000)):
        s = ms - ms % size  # Python % floors, fine before 1970 too
        out.append((name, s, s + size))
    d = london(ms).date()
    s = london_midnight_ms(d)
    e = london_midnight_ms(d + timedelta(days=1))
    assert s <= ms < e
    out.append(("1d", s, e))
    return out


# ---------------------------------------------------------------- model

def read_events(lines) -> list[dict]:
    events = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        ev = json.loads(line)
        for f in ("event_id", "vendor", "practice", "kind", "at"):
            if f not in ev:
                raise ValueError(f"line {n}: missing {f}")
        if ev["kind"] not in KINDS:
            raise ValueError(f"line {n}: unknown kind {ev['kind']}")
        if ev["kind"] not in PRACTICE_LEVEL and "call_id" not in ev:
            raise ValueError(f"line {n}: missing call_id")
        ev["_ms"] = parse_ts(ev["at"])
        events.append(ev)
    return events


def canon(ev: dict) -> str:
    # Without `at`: its instant is compared first, and two spellings of one
    # instant are the same content.
    return json.dumps({k: v for k, v in ev.items() if not k.startswith("_") and k != "at"},
                      sort_keys=True)


def compute(events: list[dict], holidays: set[date]) -> list[dict]:
    wins: dict[tuple[str, str, int], dict] = {}

    def win(practice, name, start, end):
        k = (practice, name, start)
        w = wins.get(k)
        if w is None:
            w = {f: 0 for f in FIELDS}
            w.update(practice=practice, window=name, start=start, end=end,
                     revision=0, final=True,
                     wait_hist=[0] * 10, abandon_hist=[0] * 10, talk_hist=[0] * 10,
                     _callers=set())
            wins[k] = w
        return w

    def land(ev):
        return [win(ev["practice"], n, s, e) for n, s, e in windows_of(ev["_ms"])]

    def add(ev, field, n=1):
        for w in land(ev):
            w[field] += n

    def add_duration(ev, prefix, ms, with_hist=True):
        ms = max(0, ms)  # a negative duration is clamped to 0
        for w in land(ev):
            w[prefix + "_count"] += 1
            w[prefix + "_ms_sum"] += ms
            if with_hist:
                w[prefix + "_ms_max"] = max(w[prefix + "_ms_max"], ms)
                w[prefix + "_hist"][bucket(ms)] += 1

    # Every event, duplicates included, lands in its windows (a window exists).
    for ev in events:
        land(ev)

    # Duplicates by event_id: the copy with the earliest `at` counts.
    by_id: dict[str, list[dict]] = defaultdict(list)
    for ev in events:
        by_id[ev["event_id"]].append(ev)
    counted = []
    for eid, copies in by_id.items():
        copies.sort(key=lambda e: (e["_ms"], KIND_ORDER.index(e["kind"]),
                                   e.get("caller") is not None, e.get("caller") or "", canon(e)))
        counted.append(copies[0])
        for dup in copies[1:]:
            add(dup, "dq_duplicates")

    # Group counted events per call.
    calls: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for ev in counted:
        if ev["kind"] in PRACTICE_LEVEL:
            continue  # practice-level: lands in its windows, counts nothing here
        calls[(ev["vendor"], ev["call_id"])].append(ev)

    waiting_intervals: dict[str, list[tuple[int, int]]] = defaultdict(list)

    for key, evs in calls.items():
        by_kind: dict[str, list[dict]] = defaultdict(list)
        for ev in evs:
            by_kind[ev["kind"]].append(ev)
        for k in by_kind:
            by_kind[k].sort(key=lambda e: (e["_ms"], e["event_id"]))

        for ev in by_kind["offered"]:
            add(ev, "offered")
            if ev.get("caller") is not None:
                for w in land(ev):
                    w["_callers"].add(ev["caller"])
        for ev in by_kind["callback_made"]:
            add(ev, "callbacks_made")

        outs = sorted((e for e in evs if e["kind"] in OUTCOMES),
                      key=lambda e: (e["_ms"], e["event_id"]))
        outcome = outs[0] if outs else None
        for other in outs[1:]:
            add(other, "dq_conflicts")

        if by_kind["queued"]:
            ws = by_kind["queued"][0]
        elif by_kind["offered"]:
            ws = by_kind["offered"][0]
        else:
            ws = None

        if outcome is None:
            continue
        ok = outcome["kind"]
        add(outcome, ok)
        if ok == "diverted_111" and in_core_hours(outcome["_ms"], holidays):
            add(outcome, "diverted_111_core")
        if ok == "answered":
            if ws is not None:
                add_duration(outcome, "wait", outcome["_ms"] - ws["_ms"])
            if by_kind["ended"]:
                end = by_kind["ended"][0]
                add_duration(end, "talk", end["_ms"] - outcome["_ms"])
        elif ok == "abandoned":
            if ws is not None:
                add_duration(outcome, "abandon", outcome["_ms"] - ws["_ms"])
        elif ok == "callback_requested":
            if by_kind["callback_made"]:
                first = by_kind["callback_made"][0]
                add_duration(first, "callback_delay", first["_ms"] - outcome["_ms"], with_hist=False)
        if ws is not None and ws["_ms"] < outcome["_ms"]:
            waiting_intervals[ws["practice"]].append((ws["_ms"], outcome["_ms"]))

    # peak_waiting: max over instants of the window of calls with
    # wait_start <= t < outcome_at.
    for (practice, _name, _s), w in wins.items():
        ivs = [(max(a, w["start"]), min(b, w["end"])) for a, b in waiting_intervals.get(practice, ())]
        ivs = [(a, b) for a, b in ivs if a < b]
        pts = sorted([(a, 1) for a, _ in ivs] + [(b, -1) for _, b in ivs], key=lambda p: (p[0], p[1]))
        cur = best = 0
        for _, d in pts:  # ends (-1) before starts (+1) at the same instant
            cur += d
            best = max(best, cur)
        w["peak_waiting"] = best

    out = []
    for k in sorted(wins):
        w = wins[k]
        w["unique_callers"] = len(w.pop("_callers"))
        rec = {f: w[f] for f in FIELDS}
        rec["start"] = fmt_ts(w["start"])
        rec["end"] = fmt_ts(w["end"])
        out.append(rec)
    return out


def default_calendar() -> Path:
    here = Path(__file__).resolve()
    for p in [here.parents[2] / "data" / "bank-holidays-england-and-wales.json"]:
        if p.exists():
            return p
    raise FileNotFoundError("bank holidays calendar; pass --bank-holidays")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", required=True, help="canonical events JSONL, - for stdin")
    ap.add_argument("--metrics", required=True, help="output JSONL, - for stdout")
    ap.add_argument("--bank-holidays", type=Path, default=None)
    a = ap.parse_args(argv)
    holidays = load_bank_holidays(a.bank_holidays or default_calendar())
    src = sys.stdin if a.events == "-" else open(a.events)
    events = read_events(src)
    recs = compute(events, holidays)
    dst = sys.stdout if a.metrics == "-" else open(a.metrics, "w")
    for r in recs:
        dst.write(json.dumps(r, separators=(",", ":")) + "\n")
    dst.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
