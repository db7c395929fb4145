"""Problem-set benchmark: the ``block`` topic with keys, LaTeX sheets and Moodle XML.

Goal (issue 5): 200 variants in under 20 s on this machine, excluding pdflatex.  Measured
in one run: ``make_files`` (search, exact forward passes, constraints, worked solutions,
answers.json, quiz.xml, variant files) for N = 25, 50, 100 and 200 variants, each with a
fresh seed so no cache is shared between sizes; then the time per variant, which shows
how the cost grows with N (linearly: every variant is independent).  The command-line
run for 200 also writes the files (``exacttransformer problems … -o DIR``).

Run: ``python bench/bench_problems.py`` (``--quick`` stops at N = 50).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

GOAL_S = 20.0


def timed(n: int, seed: str, workers: int | None) -> tuple[float, float, int]:
    from exacttransformer.problems import Request, make_files

    req = Request(seed=seed, topics=("block",), students=tuple(str(i) for i in range(1, n + 1)))
    t0, c0 = time.perf_counter(), time.process_time()
    files = make_files(req, moodle=True, workers=workers)
    return time.perf_counter() - t0, time.process_time() - c0, sum(map(len, files.values()))


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = (25, 50) if quick else (25, 50, 100, 200)
    from exacttransformer.problems.pipeline import default_workers

    workers = default_workers()
    print(f"block topic, medium difficulty, with keys, LaTeX and Moodle XML; {workers} worker "
          f"processes on {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    timed(2, "warm-up", 1)  # imports and the first sympy caches, paid once per process
    rows = []
    for n in sizes:
        wall, cpu, size = timed(n, f"bench-{n}", workers)
        rows.append((n, wall))
        print(f"N = {n:4d}: {wall:6.2f} s wall ({1000 * wall / n:5.1f} ms per variant), "
              f"{size / 1e6:5.2f} MB written")
    if len(rows) > 1:
        (n0, w0), (n1, w1) = rows[0], rows[-1]
        print(f"growth: {n1 // n0}x the variants took {w1 / w0:.1f}x the time "
              f"(linear would be {n1 / n0:.0f}x)")
    if not quick:
        wall = rows[-1][1]
        verdict = "met" if wall < GOAL_S else "NOT met"
        print(f"200 variants: {wall:.2f} s (goal < {GOAL_S:.0f} s): {verdict}")
        out = tempfile.mkdtemp(prefix="bench-problems-")
        try:
            exe = shutil.which("exacttransformer")
            cli = [exe] if exe else [sys.executable, "-m", "exacttransformer"]
            t0 = time.perf_counter()
            subprocess.run(cli + ["problems", "--seed", "bench-cli", "--count", "200",
                                  "--topic", "block", "--moodle", "-o", out, "--force"],
                           check=True, stderr=subprocess.DEVNULL)
            print(f"command line, 200 variants written to disk: "
                  f"{time.perf_counter() - t0:.2f} s (including Python start-up)")
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
