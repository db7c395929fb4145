"""Wall-clock helpers shared by the benchmark scripts (ratios measured in one run)."""

from __future__ import annotations

import statistics
import subprocess
import time


def wall(cmd: list[str], repeat: int = 3, check: bool = True) -> float:
    """Median wall time of running ``cmd`` as a whole process, ``repeat`` times.

    ``check=False`` accepts a non-zero exit (``check`` exits 1 when it finds claims that are
    not exact, which is what it is measured on)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_ratio(cmd: list[str], base_cmd: list[str], repeat: int = 7,
                 check: bool = True) -> tuple[float, float, float]:
    """``cmd``'s wall time over ``base_cmd``'s, measured in alternating pairs (so that a load
    change on the machine hits both), as the median of the pairs' ratios; and both medians."""
    ratios, times, bases = [], [], []
    for _ in range(repeat):
        b, t = wall(base_cmd, 1), wall(cmd, 1, check)
        bases.append(b)
        times.append(t)
        ratios.append(t / b)
    return statistics.median(ratios), statistics.median(times), statistics.median(bases)
