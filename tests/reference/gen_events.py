#!/usr/bin/env python3
"""Random but valid canonical call event files that stress metrics.md.

    python3 gen_events.py --seed 7 --calls 12 --out events.jsonl [--spellings]

Each file holds a few practices and vendors, the same call_id under two
vendors, identical and differing duplicates, conflicting outcomes (with equal
`at` ties), outcomes before `offered`, callbacks made before the request,
missing `offered` / `ended`, several `queued`, instants exactly on window
bounds, on 08:00:00.000 and 18:30:00.000 London, on 23:59:59.999 London, on
the days the clocks change and on bank holidays, durations exactly on the
histogram bounds, `divert_111_on`/`off`, absent and repeated callers,
`queue_position`, all shuffled.

With --spellings, `at` is written in varying RFC 3339 spellings of the same
instant (no fraction, 1/6/9 fraction digits, +00:00, +01:00, -05:00, ...).
Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc
BOUNDS_MS = [b * 1000 for b in (10, 30, 60, 120, 300, 600, 1200, 1800, 3600)]
OUTCOMES = ["answered", "callback_requested", "abandoned", "missed", "ivr_ended", "diverted_111"]

# Days: clock changes (Sundays), the weekdays around them, bank holidays,
# ordinary weekdays in winter and summer, a Saturday.
DAYS = [
    "2026-03-29", "2026-03-27", "2026-03-30",      # spring forward (Sun), Fri, Mon
    "2026-10-25", "2026-10-23", "2026-10-26",      # fall back (Sun), Fri, Mon
    "2025-12-25", "2025-12-26", "2026-05-04",      # bank holidays (Thu, Fri, Mon)
    "2026-08-31", "2026-12-28",                    # bank holidays (Mon, Mon substitute)
    "2026-11-23", "2026-07-15", "2026-11-28",      # Mon (GMT), Wed (BST), Sat
]
LOCAL_TIMES = [
    (0, 0, 0, 0), (23, 59, 59, 999), (8, 0, 0, 0), (7, 59, 59, 999),
    (18, 30, 0, 0), (18, 29, 59, 999), (12, 0, 0, 0), (12, 14, 59, 999),
    (9, 15, 0, 0), (17, 59, 59, 999), (0, 59, 59, 999),
]


def local_ms(day: str, h: int, m: int, s: int, ms: int) -> int:
    y, mo, d = map(int, day.split("-"))
    dt = datetime(y, mo, d, h, m, s, tzinfo=LONDON)
    return int(dt.timestamp()) * 1000 + ms


def utc_ms(day: str, h: int, m: int, s: int, ms: int) -> int:
    y, mo, d = map(int, day.split("-"))
    return int(datetime(y, mo, d, h, m, s, tzinfo=UTC).timestamp()) * 1000 + ms


def anchors_for(day: str) -> list[int]:
    a = [local_ms(day, *t) for t in LOCAL_TIMES]
    # UTC instants: midnight UTC, the clock-change instant 01:00Z, window bounds
    a += [utc_ms(day, 0, 0, 0, 0), utc_ms(day, 0, 59, 59, 999), utc_ms(day, 1, 0, 0, 0),
          utc_ms(day, 1, 59, 59, 999), utc_ms(day, 23, 0, 0, 0), utc_ms(day, 23, 59, 59, 999)]
    return a


def spell(ms: int, rnd: random.Random | None) -> str:
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    frac = ms % 1000
    if rnd is None:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}Z"
    choice = rnd.randrange(9)
    if choice == 0 and frac == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if choice == 1 and frac % 100 == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 100}Z"
    if choice == 2:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}000Z"
    if choice == 3:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}{rnd.randrange(10**6):06d}Z"
    if choice == 4:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}+00:00"
    if choice in (5, 6):
        off = [timedelta(hours=1), timedelta(hours=-5), timedelta(hours=5, minutes=30)][rnd.randrange(3)]
        ldt = dt.astimezone(timezone(off))
        sign = "+" if off >= timedelta(0) else "-"
        tot = abs(int(off.total_seconds())) // 60
        return ldt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}{sign}{tot // 60:02d}:{tot % 60:02d}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:03d}Z"


def duration(rnd: random.Random) -> int:
    r = rnd.random()
    if r < 0.35:
        return rnd.choice(BOUNDS_MS)                       # exactly on a bound
    if r < 0.5:
        return rnd.choice(BOUNDS_MS) + rnd.choice([-1, 1])  # just either side
    if r < 0.55:
        return 0
    if r < 0.62:
        return -rnd.randrange(1, 90_000)                    # before its start: clamp
    if r < 0.67:
        return rnd.randrange(3_600_001, 3 * 3_600_000)      # +inf bucket
    return rnd.randrange(1, 400_000)


def generate(seed: int, n_calls: int, spellings: bool, cross_dup: bool = False,
             wild: bool = False, dense: bool = False, ties: bool = False,
             split_practice: bool = False) -> list[dict]:
    rnd = random.Random(seed)
    practices = rnd.sample(["A81001", "B82005", "C83010", "Y02586"], rnd.randint(1, 3))
    vendors = ["generic", "twilio", "amazon-connect", "asterisk", "teams"]
    days = rnd.sample(DAYS, rnd.randint(1, 2))
    anchors = [a for d in days for a in anchors_for(d)]
    if dense:
        anchors = rnd.sample(anchors, 2)
    callers = [f"h{rnd.randrange(16**6):06x}" for _ in range(rnd.randint(1, 4))]
    events: list[dict] = []
    ids: set[str] = set()

    def new_id() -> str:
        while True:
            # ids of varying length and case, so "smaller event_id" is a string order
            eid = rnd.choice(["e", "E", "ev-", ""]) + format(rnd.randrange(1, 5000), rnd.choice(["d", "x"]))
            if eid not in ids:
                ids.add(eid)
                return eid

    def ev(kind, at, practice, vendor=None, call_id=None, **extra):
        e = {"event_id": new_id(), "vendor": vendor or rnd.choice(vendors), "practice": practice,
             "kind": kind, "_ms": at}
        if call_id is not None:
            e["call_id"] = call_id
        e.update(extra)
        if "caller" not in e and kind not in ("divert_111_on", "divert_111_off") and rnd.random() < 0.15:
            e["caller"] = rnd.choice(callers)  # a caller on a kind other than offered
        events.append(e)
        return e

    def near(a: int) -> int:
        r = rnd.random()
        if r < 0.5:
            return a
        if r < 0.8:
            return a + rnd.choice([-1, 1, -1000, 1000, 60_000, -60_000])
        return a + rnd.randrange(-600_000, 600_000)

    call_ids = [f"c{rnd.randrange(10**5)}" for _ in range(n_calls)]
    used: set[tuple[str, str]] = set()
    for i in range(n_calls):
        practice = rnd.choice(practices)
        # the same call_id under two vendors: reuse an earlier id with another vendor
        cid = call_ids[rnd.randrange(i)] if i and rnd.random() < 0.2 else call_ids[i]
        free = [v for v in vendors if (v, cid) not in used]
        if not free:
            cid = call_ids[i] + "n"
            free = vendors
        vendor = rnd.choice(free)
        used.add((vendor, cid))
        t0 = near(rnd.choice(anchors))
        caller = rnd.choice(callers) if rnd.random() < 0.8 else None
        call = dict(practice=practice, vendor=vendor, call_id=cid)
        has_offered = rnd.random() < 0.9
        if has_offered:
            extra = {"caller": caller} if caller else {}
            ev("offered", t0, **call, **extra)
        ws = t0
        nq = rnd.choice([0, 0, 1, 1, 2, 3])
        qt = t0
        qs = []
        for k in range(nq):
            qt = qt + (duration(rnd) if rnd.random() < 0.5 else rnd.randrange(0, 20_000))
            extra = {"queue_position": rnd.randrange(1, 12)} if rnd.random() < 0.6 else {}
            qs.append(ev("queued", qt, **call, **extra)["_ms"])
        if qs:
            ws = min(qs)
        r = rnd.random()
        if r < 0.1:
            continue  # no outcome at all
        kind = rnd.choice(OUTCOMES)
        close = [a for a in anchors if abs(a - ws) < 26 * 3_600_000]
        if kind == "diverted_111" and close and rnd.random() < 0.5:
            oat = near(rnd.choice(close))  # diversions on core-hour bounds, same day
        else:
            oat = ws + duration(rnd)
        out = ev(kind, oat, **call)
        if rnd.random() < 0.2:  # a conflicting outcome, sometimes at the same instant
            k2 = rnd.choice(OUTCOMES)
            at2 = oat if rnd.random() < 0.5 else oat + rnd.choice([-1, 1, -30_000, 45_000])
            ev(k2, at2, **call)
        if kind == "answered" and rnd.random() < 0.8:
            ev("ended", oat + duration(rnd), **call)
        elif kind != "answered" and rnd.random() < 0.1:
            ev("ended", oat + rnd.randrange(0, 5000), **call)
        if kind == "callback_requested" or rnd.random() < 0.05:
            for _ in range(rnd.choice([0, 1, 1, 2])):
                ev("callback_made", out["_ms"] + duration(rnd), **call)

    # practice-level 111 diversion switches
    for p in practices:
        if rnd.random() < 0.5:
            on = near(rnd.choice(anchors))
            ev("divert_111_on", on, p)
            if rnd.random() < 0.6:
                ev("divert_111_off", on + abs(duration(rnd)), p)

    # duplicates: identical copies and copies that differ in `at`
    for e in list(events):
        r = rnd.random()
        if r < 0.08:
            events.append(dict(e))
        elif r < 0.14:
            c = dict(e)
            c["_ms"] = e["_ms"] + rnd.choice([-60_000, -1, 1, 1000, 900_000])
            events.append(c)
        elif (wild or ties) and r < 0.2:
            # a copy that differs in kind or caller: at a different `at` (the
            # earliest copy counts), or with --ties at the same `at` (the
            # contract does not say which copy counts then)
            c = dict(e)
            if "call_id" in c and rnd.random() < 0.6:
                c["kind"] = rnd.choice(OUTCOMES + ["queued", "ended", "callback_made", "offered"])
                c.pop("queue_position", None)
            else:
                c["caller"] = rnd.choice(callers + ["hzzzzzz"])
            if ties and (not wild or rnd.random() < 0.5):
                pass
            else:
                c["_ms"] = e["_ms"] + rnd.choice([-60_000, -1, 1, 1000])
            events.append(c)
        elif cross_dup and r < 0.22:
            # same event_id on another call or practice (a duplicate by event_id)
            c = dict(e)
            if "call_id" in c and rnd.random() < 0.5:
                c["call_id"] = c["call_id"] + "x"
            else:
                c["practice"] = rnd.choice([p for p in ["A81001", "B82005", "C83010", "Y02586"] if p != c["practice"]])
            if rnd.random() < 0.5:
                c["_ms"] = e["_ms"] + rnd.choice([-60_000, 1000])
            events.append(c)

    if split_practice and len(practices) > 1:
        # a call whose events name two practices (calls are identified by
        # vendor and call_id alone)
        for e in events:
            if "call_id" in e and e["kind"] != "offered" and rnd.random() < 0.1:
                e["practice"] = rnd.choice([p for p in practices if p != e["practice"]])

    rnd.shuffle(events)
    for e in events:
        e["at"] = spell(e.pop("_ms"), rnd if spellings else None)
    return events


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calls", type=int, default=12)
    ap.add_argument("--spellings", action="store_true")
    ap.add_argument("--cross-dup", action="store_true",
                    help="also repeat event_ids on other calls (duplicates by event_id across calls)")
    ap.add_argument("--wild", action="store_true")
    ap.add_argument("--dense", action="store_true")
    ap.add_argument("--ties", action="store_true")
    ap.add_argument("--split-practice", action="store_true")
    ap.add_argument("--out", default="-")
    a = ap.parse_args(argv)
    evs = generate(a.seed, a.calls, a.spellings, a.cross_dup, a.wild, a.dense, a.ties,
                   a.split_practice)
    dst = sys.stdout if a.out == "-" else open(a.out, "w")
    for e in evs:
        dst.write(json.dumps(e, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
