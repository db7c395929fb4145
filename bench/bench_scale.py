"""Scale benchmarks (issue 7), measured in one run: ratios and times, never timed tests.

For each configuration (this Python: sympy alone or with python-flint; ``--fast-python`` runs
the same measurements in a second interpreter that has python-flint) it prints:

1. the cat walkthrough's whole-process time over a bare ``python -c "import sympy"``;
2. exact forward passes with the structured engine at (tokens, d_model, heads, layers) =
   (3,4,1,1), (8,16,2,2), (16,64,4,2), (16,64,4,4): pre-norm layer norm, GELU, causal mask,
   d_ff = 2·d_model, weights k/4 with |k| <= 4; then 25 certified significant digits of every
   entry of the last ``out``; and the float64 reference (``reference_forward``) as the floor;
3. how each cost grows with tokens, width and depth: the log-log slope over a doubling series,
   and the ratio of exact (+ 25 digits) to float at each point of it.

Run: ``python bench/bench_scale.py [--quick] [--fast-python PATH]``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import time

from _timing import paired_ratio

SIZES = [(3, 4, 1, 1), (8, 16, 2, 2), (16, 64, 4, 2), (16, 64, 4, 4)]
GOALS = {(8, 16, 2, 2): "<= 2 s with sympy alone (exact + 25 digits)",
         (16, 64, 4, 2): "<= 1 s with flint, <= 60 s sympy alone (exact)",
         (16, 64, 4, 4): "<= 5 s with flint (certified 25 digits)"}


def model(tokens: int, d: int, heads: int, layers: int, seed: int = 1):  # noqa: ANN201
    import sympy

    from exacttransformer import Inputs, LayerParams, ModelConfig, Params

    rng = random.Random(seed)

    def mat(r: int, c: int):  # noqa: ANN202
        return tuple(tuple(sympy.Rational(rng.randint(-4, 4), 4) for _ in range(c)) for _ in range(r))

    lps = tuple(LayerParams(W_Q=mat(d, d), W_K=mat(d, d), W_V=mat(d, d), W_O=mat(d, d),
                            W1=mat(d, 2 * d), W2=mat(2 * d, d)) for _ in range(layers))
    cfg = ModelConfig(heads=heads, norm="pre", activation="gelu", mask="causal",
                      norm_eps=sympy.Rational(1, 100000))
    return cfg, Params(layers=lps), Inputs(given={("x", 0, None): mat(tokens, d)})


def measure(size: tuple[int, int, int, int]) -> dict[str, float | str]:
    """Exact, certified and float times for one model, in this interpreter."""
    from exacttransformer.exact.backends import STRUCTURED
    from exacttransformer.exact.printing import to_sig
    from exacttransformer.graph.forward import forward
    from exacttransformer.graph.reference import reference_forward

    cfg, params, inputs = model(*size)
    t0 = time.perf_counter()
    trace = forward(cfg, params, inputs, STRUCTURED)
    t1 = time.perf_counter()
    out = trace.value("out", size[3] - 1)
    digits = [to_sig(x, 25) for row in out for x in row]
    t2 = time.perf_counter()
    floor = []
    for _ in range(3):
        t3 = time.perf_counter()
        reference_forward(cfg, params, inputs)
        floor.append(time.perf_counter() - t3)
    return {"exact": t1 - t0, "certify": t2 - t1, "float": statistics.median(floor),
            "first": digits[0], "last": digits[-1]}


def child(sizes: list[tuple[int, int, int, int]]) -> None:
    """Measure each size in a fresh process state and print JSON lines."""
    from exacttransformer.exact.lazy import HAVE_FLINT

    print(json.dumps({"flint": HAVE_FLINT}), flush=True)
    for s in sizes:
        print(json.dumps({"size": s, **measure(s)}), flush=True)


def run_config(python: str, sizes: list[tuple[int, int, int, int]], growth: bool) -> dict:
    ratio, cat, base = paired_ratio([python, "-m", "exacttransformer", "walkthrough", "cat"],
                                    [python, "-c", "import sympy"])
    rows = []
    flint = False
    for s in sizes:  # one process per size: atoms interned by one size do not help the next
        res = subprocess.run([python, __file__, "--child", json.dumps([s])], capture_output=True,
                             text=True, check=True)
        lines = [json.loads(ln) for ln in res.stdout.splitlines()]
        flint = lines[0]["flint"]
        rows.extend(lines[1:])
    series = {}
    if growth:
        for name, family in (("tokens", [(8, 16, 2, 2), (16, 16, 2, 2), (32, 16, 2, 2), (64, 16, 2, 2)]),
                             ("width", [(8, 8, 2, 2), (8, 16, 2, 2), (8, 32, 2, 2), (8, 64, 2, 2)]),
                             ("depth", [(8, 16, 2, 1), (8, 16, 2, 2), (8, 16, 2, 4), (8, 16, 2, 8)])):
            res = subprocess.run([python, __file__, "--child", json.dumps(family)],
                                 capture_output=True, text=True, check=True)
            series[name] = [json.loads(ln) for ln in res.stdout.splitlines()][1:]
    return {"python": python, "flint": flint, "import": base, "cat": cat, "ratio": ratio,
            "rows": rows, "series": series}


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def report(cfg: dict) -> None:
    label = "python-flint" if cfg["flint"] else "sympy alone"
    print(f"\n== {label} ({cfg['python']})")
    print(f"cat walkthrough {cfg['cat']:.3f} s / import sympy {cfg['import']:.3f} s: "
          f"ratio {cfg['ratio']:.2f} (median of 7 paired runs; goal <= 1.3)")
    print(f"{'tokens,d,heads,layers':>22} {'exact s':>9} {'+25 digits s':>13} {'float s':>9} "
          f"{'exact/float':>12}  goal")
    for r in cfg["rows"]:
        size = tuple(r["size"])
        print(f"{str(size):>22} {r['exact']:>9.3f} {r['certify']:>13.3f} {r['float']:>9.4f} "
              f"{(r['exact'] + r['certify']) / r['float']:>12.0f}  {GOALS.get(size, '')}")
    for name, rows in cfg["series"].items():
        index = {"tokens": 0, "width": 1, "depth": 3}[name]
        xs = [r["size"][index] for r in rows]
        exp_exact = slope(xs, [r["exact"] + r["certify"] for r in rows])
        exp_float = slope(xs, [r["float"] for r in rows])
        print(f"growth with {name:<6} {xs}: exact+certified ~ {name}^{exp_exact:.2f}, "
              f"float reference ~ {name}^{exp_float:.2f}")
        ratios = ", ".join(f"{x}: {(r['exact'] + r['certify']) / r['float']:.0f}"
                           for x, r in zip(xs, rows, strict=True))
        print(f"    exact+certified / float at each {name}: {ratios}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip (16,64,4,4) and the growth series")
    ap.add_argument("--fast-python", help="a Python with python-flint, for the second configuration")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child([tuple(s) for s in json.loads(args.child)])
        return
    sizes = SIZES[:3] if args.quick else SIZES
    configs = [run_config(sys.executable, sizes, growth=not args.quick)]
    if args.fast_python:
        configs.append(run_config(args.fast_python, sizes, growth=not args.quick))
    for cfg in configs:
        report(cfg)
    if len(configs) == 2:
        same = all(a["first"] == b["first"] and a["last"] == b["last"]
                   for a, b in zip(configs[0]["rows"], configs[1]["rows"], strict=True))
        print(f"\ncertified digits identical in both configurations: {same}")


if __name__ == "__main__":
    main()
