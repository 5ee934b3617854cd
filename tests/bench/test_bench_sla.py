"""``bench.sla`` seeds read-model rows in bulk and times every query of the SLA report.

On a throwaway embedded PostgreSQL, as ``make bench-sla`` runs it; speed is what it
prints, no test asserts it.
"""

from __future__ import annotations

import io
import re

from bench import sla


async def test_the_sla_bench_seeds_and_times_each_query_of_three_reports() -> None:
    out = io.StringIO()
    assert await sla.main(["--count", "300", "--runs", "1"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("seeded 300 requests (900 steps)")
    timed = [line for line in lines if re.search(r"(\d+\.\d ms\s*){6}$", line)]
    assert [line.split("  ")[0] for line in timed] == [
        "a year, everything",
        "a quarter, one type",
        "a quarter, sh_zhou's department",
    ]
