"""The peer of bench/pipeline.sh `peer` (issue #8): Quix Streams computing
15-minute tumbling counts of offered, answered and abandoned calls per
practice, by event time, from callpulse's call-events topic.

Messages are Avro single-object encoding (docs/schemas.md): C3 01, the
8-byte schema fingerprint, then the Avro body of schemas/call_event.avsc.
The key is the practice code. Windows use the event's `at` and a grace of
5 minutes (callpulse's allowed lateness); a window is written when Quix
closes it (`.final()`), so each practice's last window stays open and is
not written (Quix closes windows per key).

Stops after --events messages and prints one JSON line: events, seconds
from start to the last message, events per second. Closed windows go to
--out as JSON lines: practice, start (ms), offered, answered, abandoned.

    python bench/quix_counts.py --topic T --events N --out quix.jsonl
"""

import argparse
import io
import json
import os
import sys
import time
import uuid

import fastavro
from quixstreams import Application
from quixstreams.models.serializers import Deserializer

HERE = os.path.dirname(os.path.abspath(__file__))


def load_schema():
    with open(os.path.join(HERE, "..", "schemas", "call_event.avsc")) as f:
        schema = json.load(f)
    # Keep `at` as epoch milliseconds instead of a datetime.
    for field in schema["fields"]:
        if isinstance(field["type"], dict):
            field["type"].pop("logicalType", None)
    return fastavro.parse_schema(schema)


class CallEventDeserializer(Deserializer):
    """Avro single-object encoding -> dict."""

    def __init__(self, schema, fingerprints=None):
        super().__init__()
        self.schema = schema
        self.fingerprints = fingerprints

    def __call__(self, value, ctx):
        if value[:2] != b"\xc3\x01":
            raise ValueError("not Avro single-object encoding")
        return fastavro.schemaless_reader(io.BytesIO(value[10:]), self.schema)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--brokers", default=os.environ.get("CALLPULSE__KAFKA__BROKERS", "127.0.0.1:9092"))
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args()

    started = time.time()
    app = Application(
        broker_address=args.brokers,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        # The local broker (tansu) cannot host changelog topics reliably (no
        # transactions, memory storage); state is local RocksDB only.
        use_changelog_topics=False,
        auto_create_topics=False,
        state_dir=args.state_dir or f"/tmp/quix-state-{uuid.uuid4().hex[:8]}",
        loglevel="WARNING",
    )
    topic = app.topic(
        args.topic,
        value_deserializer=CallEventDeserializer(load_schema()),
        timestamp_extractor=lambda value, headers, timestamp, timestamp_type: value["at"],
    )
    sdf = app.dataframe(topic)

    seen = {"n": 0, "first": None, "last": None}

    def count(value):
        seen["n"] += 1
        if seen["first"] is None:
            seen["first"] = time.time()
        if seen["n"] >= args.events:
            seen["last"] = time.time()
            app.stop()

    sdf = sdf.update(count)
    sdf = sdf.filter(lambda v: v["kind"] in ("offered", "answered", "abandoned"))

    def add(acc, value):
        acc[value["kind"]] += 1
        return acc

    sdf = (
        sdf.tumbling_window(duration_ms=15 * 60 * 1000, grace_ms=5 * 60 * 1000)
        .reduce(add, lambda value: add({"offered": 0, "answered": 0, "abandoned": 0}, value))
        .final()
    )

    out = open(args.out, "w")

    def write(value, key, timestamp, headers):
        key = key.decode() if isinstance(key, bytes) else key
        out.write(json.dumps({"practice": key, "start": value["start"], **value["value"]}) + "\n")

    sdf.update(write, metadata=True)
    app.run()
    out.close()
    if seen["last"] is None:
        sys.exit(f"stopped after {seen['n']} of {args.events} events")
    elapsed = seen["last"] - started
    print(
        json.dumps(
            {
                "events": seen["n"],
                "seconds": round(elapsed, 3),
                "events_per_s": round(seen["n"] / elapsed, 1),
                "first_message_after_s": round(seen["first"] - started, 3),
                "events_per_s_after_first_message": round(seen["n"] / (seen["last"] - seen["first"]), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
