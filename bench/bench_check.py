"""Checker benchmarks, measured in one run (ratios, not timed tests).

1. Whole-process ``exacttransformer check worked_examples/cat.toml`` divided by
   ``python -c "import sympy"`` (goal <= 1.5).
2. A generated 200-claim file (token rows of every node of a 6-token, d_model 8,
   2-head block, printed to 3 decimals, about 5% deliberately wrong) checked in-process
   (goal < 3 s).

Run: ``python bench/bench_check.py``.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from _timing import paired_ratio

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    exe = shutil.which("exacttransformer")
    cli = [exe] if exe else [sys.executable, "-m", "exacttransformer"]
    ratio, ours, base = paired_ratio(cli + ["check", str(ROOT / "worked_examples" / "cat.toml")],
                                     [sys.executable, "-c", "import sympy"], check=False)
    print(f"import sympy: {base:.3f} s; check cat.toml: {ours:.3f} s; ratio {ratio:.2f} "
          "(median of 7 alternating pairs; goal <= 1.5)")
    import exacttransformer as et
    from exacttransformer.check import check

    text = whole_row_file(200)
    walk = et.loads(text, "200-claims.toml")
    t0 = time.perf_counter()
    report = check(walk)
    dt = time.perf_counter() - t0
    n = sum(len(c.elements) for c in report.claims)
    print(f"{len(report.claims)} claims ({n} printed numbers): {dt:.2f} s (goal < 3 s); "
          f"summary {report.summary()}")


def whole_row_file(claims: int) -> str:
    """200 claims, one per token row of every node (cycling), printed to 3 decimals."""
    import random

    import exacttransformer as et
    from exacttransformer.exact.printing import to_fixed

    rng = random.Random(7)
    n, d = 6, 8

    def mat(r: int, c: int) -> str:
        return "[" + ", ".join("[" + ", ".join(str(rng.randint(-2, 2)) for _ in range(c)) + "]"
                               for _ in range(r)) + "]"

    text = (f'[model]\nheads = 2\n[input]\nX = {mat(n, d)}\n[weights]\nW_Q = {mat(d, 4)}\n'
            f'W_K = {mat(d, 4)}\nW_V = {mat(d, 4)}\nW_O = {mat(4, d)}\nW1 = {mat(d, 8)}\n'
            f'W2 = {mat(8, d)}\n')
    trace = et.loads(text).forward()
    rows = [(s, i) for s in trace.steps if len(s.value) == n for i in range(n)]
    out = []
    for k in range(claims):
        step, i = rows[k % len(rows)]
        cells = [to_fixed(x, 3) for x in step.value[i]]
        if rng.random() < 0.05:
            cells[0] = to_fixed(step.value[i][0] + 1, 3)
        out.append(f'[[claims]]\nname = "{step.name}"\ntoken = {i}\nlayer = {step.layer or 0}\n'
                   f'head = {step.head or 0}\nvalue = {cells!r}\n'.replace("'", '"'))
    return text + "".join(out)


if __name__ == "__main__":
    main()
