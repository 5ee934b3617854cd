"""``bench.plans`` seeds the hot reads' rows in bulk and times each read both ways.

On a throwaway embedded PostgreSQL, as ``make bench-plans`` runs it; speed is what it
prints, no test asserts it.
"""

from __future__ import annotations

import io
import re

from bench import plans


async def test_the_plans_bench_times_every_hot_read_with_and_without_generic_plans() -> None:
    out = io.StringIO()
    assert await plans.main(["--count", "300", "--runs", "7"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("seeded 300 requests and their reads")
    timed = [line for line in lines if re.search(r"(\d+\.\d\d ms\s+){2}\d+\.\d\d\s+", line)]
    names = [re.split(r"\s{2,}", line)[0] for line in timed]
    for read in ("inbox", "requests", "search", "audit trail", "deliveries", "notices"):
        assert any(name.startswith(read) for name in names), (read, names)
    assert len(names) == len(set(names)) == 20
    # Seven runs: the sixth and seventh of the default may be generic, never more.
    assert all(0 <= int(line.split()[-1]) <= 2 * 2 for line in timed)
