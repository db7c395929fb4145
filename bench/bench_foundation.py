"""Foundation benchmarks, measured in one run on this machine (ratios, not timed tests).

1. Whole-process wall time of ``exacttransformer walkthrough cat`` divided by that of
   ``python -c "import sympy"`` (goal: <= 1.3; our own cost should vanish next to sympy's).
2. The exact forward pass for random models of growing size, with the size of the exact
   results (sympy operation count of the last layer's ``out``).

Run: ``python bench/bench_foundation.py [--repeat N] [--quick]``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time

import sympy
from _timing import wall


def random_model(tokens: int, d: int, heads: int, layers: int, seed: int):
    from exacttransformer import Inputs, LayerParams, ModelConfig, Params

    rng = random.Random(seed)

    def mat(r: int, c: int):
        return tuple(tuple(sympy.Integer(rng.randint(-2, 2)) for _ in range(c)) for _ in range(r))

    d_head = max(1, d // heads)
    width = d_head * heads
    lps = tuple(
        LayerParams(W_Q=mat(d, width), W_K=mat(d, width), W_V=mat(d, width), W_O=mat(width, d),
                    W1=mat(d, 2 * d), W2=mat(2 * d, d))
        for _ in range(layers)
    )
    x = mat(tokens, d)
    return ModelConfig(heads=heads), Params(layers=lps), Inputs(given={("x", 0, None): x})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="skip the largest sizes")
    args = ap.parse_args()

    exe = shutil.which("exacttransformer")
    cli = [exe] if exe else [sys.executable, "-m", "exacttransformer"]
    base = wall([sys.executable, "-c", "import sympy"], args.repeat)
    ours = wall(cli + ["walkthrough", "cat"], args.repeat)
    print(f"import sympy: {base:.3f} s; walkthrough cat: {ours:.3f} s; "
          f"ratio {ours / base:.2f} (goal <= 1.3)")

    from exacttransformer import forward

    sizes = [(3, 4, 1, 1), (4, 8, 1, 1), (8, 8, 2, 1), (8, 16, 2, 1), (16, 16, 4, 1),
             (16, 64, 4, 1), (3, 4, 1, 2), (4, 4, 1, 2)]
    if not args.quick:
        sizes += [(6, 8, 2, 2)]
    print(f"{'tokens':>6} {'d':>4} {'heads':>5} {'layers':>6} {'seconds':>9} {'ops(out)':>10}")
    for n, d, h, layers in sizes:
        cfg, params, inputs = random_model(n, d, h, layers, seed=n * 1000 + d)
        t0 = time.perf_counter()
        trace = forward(cfg, params, inputs)
        dt = time.perf_counter() - t0
        out = trace.value("out", layers - 1)
        ops = sum(sympy.count_ops(x) for row in out for x in row)
        print(f"{n:>6} {d:>4} {h:>5} {layers:>6} {dt:>9.3f} {ops:>10}")


if __name__ == "__main__":
    main()
