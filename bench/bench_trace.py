"""Whole-trace benchmarks (issue 13), measured in one run: ratios and times, never timed tests.

Every figure is a whole process, as a user runs it: start Python, read the TOML file, the
exact forward pass, and every node of the trace certified and written.  For each
configuration (this Python: sympy alone or with python-flint; ``--fast-python`` runs the
same measurements with a second interpreter that has python-flint) it prints:

1. ``walkthrough FILE --format json --digits 25`` of the committed (8,16,2,2) model
   (``worked_examples/scale_two_blocks_gelu.toml``) over ``python -c "import sympy"``,
   measured in alternating pairs (goal <= 5 with sympy alone, <= 2 with python-flint);
2. ``check`` of a file with 200 claims on that model (a token row of a node each, 4
   significant digits, about 5% wrong) and ``latex --token t7`` of it, each over the walkthrough of 1,
   in alternating pairs (goal <= 1.5);
3. the (16,64,4,2) whole trace, JSON, 25 digits, in seconds (goal <= 10 s with python-flint,
   <= 30 s without), and the (16,64,4,4) one;
4. how the whole trace grows with tokens, width and depth: the fitted log-log slope of its
   time over a doubling series (one run per point).

Models are (tokens, d_model, heads, layers): pre-norm layer norm, GELU, causal mask,
d_ff = 2·d_model, weights and inputs k/4 with |k| <= 4 (``model_toml``).

Run: ``python bench/bench_trace.py [--quick] [--fast-python PATH]``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import paired_ratio

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "worked_examples" / "scale_two_blocks_gelu.toml"
SERIES = {"tokens": [(4, 16, 2, 2), (8, 16, 2, 2), (16, 16, 2, 2)],
          "width": [(8, 8, 2, 2), (8, 16, 2, 2), (8, 32, 2, 2)],
          "depth": [(8, 16, 2, 1), (8, 16, 2, 2), (8, 16, 2, 4)]}
LARGE = [(16, 64, 4, 2), (16, 64, 4, 4)]
GOAL = (16, 64, 4, 2)


def model_toml(tokens: int, d: int, heads: int, layers: int, seed: int = 1) -> str:
    """A walkthrough file for a random pre-norm GELU model (weights k/4, |k| <= 4)."""
    rng = random.Random(seed)

    def mat(r: int, c: int) -> str:
        rows = (", ".join(f'"{rng.randint(-4, 4)}/4"' for _ in range(c)) for _ in range(r))
        return "[" + ",\n  ".join(f"[{row}]" for row in rows) + "]"

    text = (f'title = "random ({tokens}, {d}, {heads}, {layers})"\n[model]\nheads = {heads}\n'
            'mask = "causal"\nnorm = "pre"\nnorm_eps = "1e-5"\nactivation = "gelu"\n\n'
            f'[input]\ntokens = {[f"t{i}" for i in range(tokens)]!r}\nX = {mat(tokens, d)}\n'
            ).replace("'", '"')
    for _ in range(layers):
        text += (f"\n[[layers]]\nW_Q = {mat(d, d)}\nW_K = {mat(d, d)}\nW_V = {mat(d, d)}\n"
                 f"W_O = {mat(d, d)}\nW1 = {mat(d, 2 * d)}\nW2 = {mat(2 * d, d)}\n")
    return text


def claims_toml(path: Path, claims: int = 200) -> str:
    """``path``'s model with ``claims`` claims: a token row of a node each (cycling through
    the trace), printed to 4 significant digits, about 5% of them wrong in their first number."""
    import exacttransformer as et
    from exacttransformer.numbers import to_sig

    rng = random.Random(7)
    text = path.read_text()
    trace = et.load(str(path)).forward()
    n = len(trace.tokens)
    rows = [(s, i) for s in trace.steps if len(s.value) == n for i in range(n)]
    stride = max(1, len(rows) // claims)
    out = []
    for k in range(claims):
        step, i = rows[(k * stride) % len(rows)]
        cells = [to_sig(x, 4) for x in step.value[i]]
        if rng.random() < 0.05:
            cells[0] = to_sig(step.value[i][0] + 1, 4)
        out.append(f'[[claims]]\nname = "{step.name}"\ntoken = {i}\nlayer = {step.layer or 0}\n'
                   f'head = {step.head or 0}\nvalue = {cells!r}\n'.replace("'", '"'))
    return text + "\n" + "".join(out)


def model_file(size: tuple[int, int, int, int]) -> str:
    return "m_" + "_".join(map(str, size)) + ".toml"


def once(cmd: list[str], check: bool = True) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``cmd``: on a shared machine the
    CPU time is the steadier of the two."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def run_config(python: str, work: Path, quick: bool) -> dict:
    cli = [python, "-m", "exacttransformer"]
    flint = subprocess.run([python, "-c", "import exacttransformer.exact.lazy as L; print(L.HAVE_FLINT)"],
                           capture_output=True, text=True, check=True).stdout.strip() == "True"
    walk = cli + ["walkthrough", str(EXAMPLE), "--format", "json", "--digits", "25"]
    once(walk)  # compiles the bytecode of every module the runs below import
    repeat = 3 if quick else 7
    base_cmd = [python, "-c", "import sympy"]
    ratio, walk_s, base = paired_ratio(walk, base_cmd, repeat=repeat)
    cpu_ratio = statistics.median(once(walk)[1] / once(base_cmd)[1] for _ in range(3))
    check_ratio, check_s, _ = paired_ratio(cli + ["check", str(work / "claims.toml")], walk,
                                           repeat=repeat, check=False)
    latex_ratio, latex_s, _ = paired_ratio(
        cli + ["latex", str(EXAMPLE), "--token", "t7", "-o", "-"], walk, repeat=repeat)
    large = {} if quick else {
        size: once(cli + ["walkthrough", str(work / model_file(size)), "--format", "json", "--digits", "25"])
        for size in LARGE}
    series = {}
    for name, sizes in SERIES.items():
        points = []
        for size in sizes:
            f = work / model_file(size)
            points.append(once(cli + ["walkthrough", str(f), "--format", "json", "--digits", "25"]))
        series[name] = points
    return {"python": python, "flint": flint, "import": base, "walk": walk_s, "ratio": ratio,
            "cpu_ratio": cpu_ratio,
            "check": check_s, "check_ratio": check_ratio, "latex": latex_s,
            "latex_ratio": latex_ratio, "large": large, "series": series}


def report(cfg: dict) -> None:
    label = "python-flint" if cfg["flint"] else "sympy alone"
    goal = 2 if cfg["flint"] else 5
    print(f"\n== {label} ({cfg['python']})")
    print(f"whole trace (8,16,2,2), JSON, 25 digits: {cfg['walk']:.2f} s; import sympy "
          f"{cfg['import']:.2f} s; ratio {cfg['ratio']:.1f} (goal <= {goal}); in CPU seconds "
          f"{cfg['cpu_ratio']:.1f}")
    print(f"check, 200 claims on it: {cfg['check']:.2f} s, {cfg['check_ratio']:.2f} x the "
          "walkthrough (goal <= 1.5)")
    print(f"latex --token t7 of it: {cfg['latex']:.2f} s, {cfg['latex_ratio']:.2f} x the "
          "walkthrough (goal <= 1.5)")
    for size, (wall, cpu) in cfg["large"].items():
        goal = f" (goal <= {10 if cfg['flint'] else 30} s)" if size == GOAL else ""
        print(f"whole trace {size}, JSON, 25 digits: {wall:.1f} s ({cpu:.1f} s CPU){goal}")
    for name, times in cfg["series"].items():
        index = {"tokens": 0, "width": 1, "depth": 3}[name]
        xs = [s[index] for s in SERIES[name]]
        walls, cpus = [t[0] for t in times], [t[1] for t in times]
        points = ", ".join(f"{x}: {w:.2f} s ({c:.2f} CPU)" for x, w, c in zip(xs, walls, cpus, strict=True))
        print(f"growth with {name:<6} ({points}): whole trace ~ {name}^{slope(xs, walls):.2f} "
              f"(CPU ~ {name}^{slope(xs, cpus):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 pairs instead of 7; skip d_model 64")
    ap.add_argument("--fast-python", help="a Python with python-flint, for the second configuration")
    args = ap.parse_args()
    # An installed package runs from its compiled bytecode; with PYTHONDONTWRITEBYTECODE set
    # (as on some CI machines) every run would compile exacttransformer's modules again,
    # about 0.1 s that import sympy, run from its installed bytecode, never pays.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "claims.toml").write_text(claims_toml(EXAMPLE))
        for size in {s for sizes in SERIES.values() for s in sizes} | set(LARGE):
            (work / model_file(size)).write_text(model_toml(*size))
        configs = [run_config(sys.executable, work, args.quick)]
        if args.fast_python:
            configs.append(run_config(args.fast_python, work, args.quick))
    for cfg in configs:
        report(cfg)


if __name__ == "__main__":
    main()
