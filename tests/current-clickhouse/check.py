"""The schema and the analysts' queries on current ClickHouse.

The local server is Debian's ClickHouse 18.16; analysts may run a current
one (the docker-compose image). This runs every migration of
schemas/clickhouse and every query of schemas/queries on ClickHouse 26.9,
embedded through the chdb-core wheel, on a few rows of data, and fails on
the first error. Run by deploy/local/test.sh.

    python3 tests/current-clickhouse/check.py REPO_ROOT
"""

import glob
import os
import re
import sys
import tempfile

from chdb import session

# Parameters of each query, in order (docs/queries.md).
PARAMS = {
    "pcn_day.sql": ["'QHM'", "'2026-11-23'"],
    "longest_waits_week.sql": ["'2026-11-23'", "10"],
    "diversions_111_month.sql": ["'2026-11-01'"],
    "pcn_answered_by_hour.sql": ["'U10030'", "'2026-11-01'", "'2026-11-30'"],
    "cbt_extract_month.sql": ["'2026-11-01'", "'QHM'"],
    "cbt_durations_month.sql": ["'2026-11-01'", "'QHM'"],
}


def statements(path):
    text = "\n".join(
        line for line in open(path).read().splitlines() if not line.strip().startswith("--")
    )
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def main(root):
    with tempfile.TemporaryDirectory() as state:
        db = session.Session(os.path.join(state, "db"))
        version = str(db.query("SELECT version()", "CSV")).strip().strip('"')
        assert version.split(".")[0] >= "24", f"not a current ClickHouse: {version}"
        print(f"ClickHouse {version}")
        db.query("CREATE DATABASE callpulse")
        db.query("USE callpulse")
        for path in sorted(glob.glob(os.path.join(root, "schemas/clickhouse/0*.sql"))):
            for stmt in statements(path):
                db.query(stmt)
            print("migration ok:", os.path.basename(path))
        # A practice, one window and one call, so the views have rows to join.
        db.query(
            "INSERT INTO organisations (practice_code, practice_name, pcn_code, pcn_name, "
            "sub_icb_code, sub_icb_name, icb_code, icb_name, region_code, region_name, version) "
            "VALUES ('A81001', 'Larch Road Surgery', 'U10030', 'Penbury PCN', '85D', 'Sub', "
            "'QHM', 'ICB', 'Y63', 'North East and Yorkshire', 1)"
        )
        db.query(
            "INSERT INTO window_metrics (practice, window, start, end, revision, final, version, "
            "offered, answered, abandoned, wait_count, wait_ms_sum, wait_hist) VALUES "
            "('A81001', '1d', toDateTime('2026-11-23 00:00:00', 'UTC'), "
            "toDateTime('2026-11-24 00:00:00', 'UTC'), 3, 1, 7, 10, 7, 2, 7, 420000, "
            "[1,2,2,1,1,0,0,0,0,0])"
        )
        rows = str(db.query("SELECT count() FROM rollup_icb", "CSV")).strip()
        assert rows != "0", "rollup_icb is empty"
        for path in sorted(glob.glob(os.path.join(root, "schemas/queries/*.sql"))):
            name = os.path.basename(path)
            values = list(PARAMS[name])
            text = "\n".join(statements(path))
            text = re.sub(r"\?", lambda _: values.pop(0), text)
            assert not values, f"{name}: parameters left over"
            db.query(text)
            print("query ok:", name)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
