"""The whole journey, exactly: how long it takes, and how it grows with layers (issue 6).

One run, one printed table (a measurement, not a timed test). The model is built in code
from ``random.Random(seed)``: a 50-word vocabulary, an embedding table ``E`` (50×16),
learned positions ``P`` (16×16) or exact sinusoidal ones, 8 prompt tokens, blocks of
2 heads with a causal mask, pre-layer-norm and a GELU (erf form, default) or ReLU
feed-forward (d_ff = 32), a final layer norm, logits through ``W_U`` (16×50), the
vocabulary softmax, and decoding (greedy, top-k = 5, top-p = 9/10, sampling at u = 0.42).
Weights are multiples of 1/8 in [-1/2, 1/2] (layer-norm gains 1 + that). Layer ``i`` has
the same weights whatever the number of layers, so the sweep only adds layers.

What is timed, each in a fresh process (no interned atoms or caches carried over; the
structured engine's runs are the fastest of ``--repeat``, 3 by default, since on a shared
machine the slower runs measure the other processes; ``cpu`` is the process time):

* ``forward``: the exact forward pass, every node of the trace;
* ``decimals``: ``to_sig(x, 6)`` of every element of every node, as ``walkthrough`` prints
  (each digit certified);
* ``walkthrough text``: once, for the 2-layer journey: ``render_text`` (exact forms too);
* the ``sympy`` engine on the same model, under a subprocess time cap (``> N s`` when it
  does not finish);
* the float reference (:func:`exacttransformer.graph.reference.reference_forward`, up to
  ``probs``; it has no decoding nodes) as the floor.

The growth with layers is fitted as a log-log slope (time ∝ layers^k); the cost of each
added layer and a least-squares line (time = a + b·layers) are printed too.

Run: ``python bench/bench_journey.py [--quick] [--cap S] [--seed N] [--activation relu]
[--positional sinusoidal] [--steps N] [--repeat N]``.
Goal: the 2-layer journey, exact with certified decimals, in under 5 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

D_MODEL = 16
D_FF = 32
TOKENS = 8
VOCAB = 50
HEADS = 2
MAX_POSITIONS = 16
TOP_K = 5
TOP_P = (9, 10)
U = (42, 100)
GOAL = 5.0


# --------------------------------------------------------------------------- the model


def build(layers: int, seed: int, activation: str, positional: str, steps: int):
    """ModelConfig, Params and Inputs of the journey model with ``layers`` blocks."""
    import random

    from sympy import Rational

    from exacttransformer import Inputs, LayerParams, ModelConfig, Params
    from exacttransformer.steps.decoding import DecodingConfig

    rng = random.Random(seed)

    def num():
        return Rational(rng.randint(-4, 4), 8)

    def mat(rows: int, cols: int):
        return tuple(tuple(num() for _ in range(cols)) for _ in range(rows))

    def vec(n: int, base: int = 0):
        return tuple(base + num() for _ in range(n))

    # Model-wide tables first, then the layers in order: layer i is the same for every depth.
    vocab = tuple(f"w{i:02d}" for i in range(VOCAB))
    tokens = tuple(vocab[rng.randrange(VOCAB)] for _ in range(TOKENS))
    E = mat(VOCAB, D_MODEL)
    P = mat(MAX_POSITIONS, D_MODEL)
    W_U = mat(D_MODEL, VOCAB)
    gamma_f, beta_f = vec(D_MODEL, 1), vec(D_MODEL)
    blocks = []
    for _ in range(layers):
        d = D_MODEL
        blocks.append(LayerParams(
            W_Q=mat(d, d), W_K=mat(d, d), W_V=mat(d, d), W_O=mat(d, d),
            W1=mat(d, D_FF), W2=mat(D_FF, d),
            gamma1=vec(d, 1), beta1=vec(d), gamma2=vec(d, 1), beta2=vec(d),
        ))
    config = ModelConfig(heads=HEADS, mask="causal", norm="pre", activation=activation,
                         positional=positional, final_norm=True, d_model=D_MODEL)
    params = Params(layers=tuple(blocks), E=E, P=P if positional == "learned" else None, W_U=W_U,
                    gamma_f=gamma_f, beta_f=beta_f)
    decoding = DecodingConfig(top_k=TOP_K, top_p=Rational(*TOP_P), u=(Rational(*U),) * max(1, steps),
                              steps=steps or None)
    return config, params, Inputs(tokens=tokens, vocab=vocab, decoding=decoding)


# --------------------------------------------------------------------------- one measurement


def child(spec: dict) -> dict:
    """One measurement in this (fresh) process; the result as a JSON-able dict."""
    sys.path.insert(0, str(ROOT))
    t0 = time.perf_counter()
    import exacttransformer  # noqa: F401
    from exacttransformer import forward
    from exacttransformer.exact.backends import EXACT, STRUCTURED
    from exacttransformer.exact.lazy import HAVE_FLINT
    from exacttransformer.exact.printing import to_float, to_sig
    from exacttransformer.graph.engine import choose
    from exacttransformer.graph.reference import reference_forward

    out: dict = {"import": time.perf_counter() - t0, "flint": HAVE_FLINT}
    t0 = time.perf_counter()
    config, params, inputs = build(spec["layers"], spec["seed"], spec["activation"],
                                   spec["positional"], spec["steps"])
    out["build"] = time.perf_counter() - t0
    out["auto"] = choose(config, params, inputs, "auto").name
    engine = spec["engine"]
    if engine == "reference":
        t0, c0 = time.perf_counter(), time.process_time()
        values = reference_forward(config, params, inputs)
        out["forward"] = time.perf_counter() - t0
        out["cpu"] = time.process_time() - c0
        out["nodes"] = len(values)
        out["probs"] = values[("probs", None, None)][-1]
        return out

    backend = STRUCTURED if engine == "structured" else EXACT
    t0, c0 = time.perf_counter(), time.process_time()
    trace = forward(config, params, inputs, backend)
    out["forward"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    digest = hashlib.sha256()
    elements = 0
    for step in trace:
        digest.update(repr(step.key).encode())
        for row in step.value:
            for x in row:
                digest.update(to_sig(x, spec["digits"]).encode() + b",")
                elements += 1
    out["decimals"] = time.perf_counter() - t0
    out["cpu"] = time.process_time() - c0
    out.update(nodes=len(trace), elements=elements, digest=digest.hexdigest()[:12])

    def ids(name: str) -> list[int]:
        return [i for i, p in enumerate(trace.value(name, None, None)[0]) if p != 0]

    out["greedy"] = int(to_float(trace.value("greedy", None, None)[0][0]))
    out["sample"] = int(to_float(trace.value("sample", None, None)[0][0]))
    out["top_k"], out["top_p"] = ids("top_k_probs"), ids("top_p_probs")
    out["probs"] = [to_float(x) for x in trace.value("probs", None, None)[-1]]
    if spec.get("render"):
        from exacttransformer.render.text import render_text

        t0 = time.perf_counter()
        text = render_text(trace, digits=spec["digits"])
        out["render"] = time.perf_counter() - t0
        out["render_chars"] = len(text)
    return out


def measure(spec: dict, cap: float | None = None) -> dict | None:
    """Run :func:`child` in a fresh process; None when it passes ``cap`` seconds."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, check=False)
    except subprocess.TimeoutExpired:
        return None
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"measurement {spec} failed with status {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def best_of(spec: dict, repeat: int) -> dict:
    """The fastest of ``repeat`` runs (by forward+decimals), as ``timeit`` advises: on a
    shared machine the slower runs measure the other processes."""
    runs = [r for r in (measure(spec) for _ in range(repeat)) if r is not None]
    return min(runs, key=lambda r: r["forward"] + r.get("decimals", 0.0))


# --------------------------------------------------------------------------- printing


def secs(x: float | None, cap: float | None = None) -> str:
    """Seconds, or ``> cap s`` for a run stopped at the cap."""
    if x is None:
        return f"> {cap:g} s" if cap is not None else "-"
    return f"{x:.2f} s"


def total(r: dict | None) -> float | None:
    return None if r is None else r["forward"] + r.get("decimals", 0.0)


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    return linear_fit(lx, ly)[1]


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(a, b) of the least-squares line y = a + b x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1–3 layers, one run each, sympy capped at 10 s, no walkthrough text")
    ap.add_argument("--cap", type=float, default=None,
                    help="seconds the sympy engine may take per run (default 30; --quick 10)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--activation", choices=("gelu", "relu"), default="gelu")
    ap.add_argument("--positional", choices=("learned", "sinusoidal"), default="learned")
    ap.add_argument("--steps", type=int, default=0,
                    help="also run the generation loop for N tokens (key/value cache); default 0")
    ap.add_argument("--digits", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs of each structured measurement, the fastest kept (default 3; --quick 1)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    cap = args.cap if args.cap is not None else (10.0 if args.quick else 30.0)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 3)
    depths = [1, 2, 3] if args.quick else [1, 2, 3, 4]
    base = dict(seed=args.seed, activation=args.activation, positional=args.positional,
                steps=args.steps, digits=args.digits)
    started = time.perf_counter()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    sys.path.insert(0, str(ROOT))
    from exacttransformer.exact.lazy import HAVE_FLINT

    flint = "installed: arb enclosures, fmpq rationals" if HAVE_FLINT else \
        "not installed: mpmath intervals, Fraction rationals (pip install '.[fast]')"
    act = "GELU (erf form, exact)" if args.activation == "gelu" else "ReLU (signs certified)"
    pos = ("learned P (16×16)" if args.positional == "learned"
           else "sinusoidal, base 10000 (exact sin/cos)")
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.system()}); "
          f"python-flint: {flint}")
    print(f"Journey model (seed {args.seed}): {TOKENS} tokens, vocabulary {VOCAB}, E {VOCAB}×{D_MODEL}, "
          f"positions {pos}; {HEADS} heads, causal mask, layer norm pre, activation {act}, "
          f"d_ff {D_FF}; final layer norm; W_U {D_MODEL}×{VOCAB}; vocabulary softmax; greedy, "
          f"top-k {TOP_K}, top-p {TOP_P[0]}/{TOP_P[1]}, sample u = {U[0]}/{U[1]}"
          + (f"; generation loop: {args.steps} more token(s), KV cache" if args.steps else "")
          + f". Decimals: to_sig(x, {args.digits}) of every element of every node.")
    print()

    # 1. The 2-layer journey: structured (best of `repeat`, plus one run rendering the
    #    walkthrough text), sympy (capped), float reference.
    journey = best_of(dict(base, layers=2, engine="structured"), repeat)
    rendered = None if args.quick else measure(dict(base, layers=2, engine="structured", render=True))
    sym2 = measure(dict(base, layers=2, engine="sympy"), cap)
    ref2 = measure(dict(base, layers=2, engine="reference"))
    assert ref2 is not None

    rows = []
    for name, r in (("structured", journey), ("sympy", sym2)):
        t = total(r)
        rows.append([name, secs(r and r["forward"], cap), secs(r and r["decimals"]),
                     secs(t, cap), secs(r and r["cpu"], cap), secs(r and r["wall"], cap),
                     "-" if t is None else ("yes" if t < GOAL else "NO")])
    rows.append(["float reference", secs(ref2["forward"]), "-", secs(ref2["forward"]),
                 secs(ref2["cpu"]), secs(ref2["wall"]), "(floor)"])
    print(f"The 2-layer journey (`auto` picks {journey['auto']}; structured: best of {repeat}; "
          f"sympy capped at {cap:g} s of process wall time)")
    print(table(["engine", "forward", "decimals", "forward+decimals", "cpu", "process wall",
                 f"< {GOAL:g} s"], rows))
    print(f"  {journey['nodes']} nodes, {journey['elements']} elements certified; "
          f"import {journey['import']:.2f} s, model build {journey['build']:.2f} s (in process wall only)")
    if rendered is not None:
        print(f"  walkthrough text (render_text, exact forms + decimals, "
              f"{rendered['render_chars']:,} characters): {rendered['render']:.2f} s more")
    gap = max(abs(a - b) for a, b in zip(journey["probs"], ref2["probs"], strict=True))
    print(f"  next token: greedy {journey['greedy']}, top-k keeps {journey['top_k']}, "
          f"top-p keeps {len(journey['top_p'])} ids, sample {journey['sample']}; "
          f"float reference probs within {gap:.1e} of the exact ones")
    if sym2 is not None:
        same = "the same" if sym2["digest"] == journey["digest"] else "DIFFERENT"
        print(f"  sympy and structured print {same} decimals (digest {journey['digest']})")
    print(f"  structured forward+decimals / float reference forward: "
          f"{total(journey) / ref2['forward']:.0f}×")  # type: ignore[operator]
    print()

    # 2. Growth with layers.
    structured: dict[int, dict] = {2: journey}
    ref: dict[int, dict] = {2: ref2}
    for n in depths:
        if n != 2:
            structured[n] = best_of(dict(base, layers=n, engine="structured"), repeat)
            ref[n] = measure(dict(base, layers=n, engine="reference"))  # type: ignore[assignment]
    sym: dict[int, dict | None] = {2: sym2, 1: measure(dict(base, layers=1, engine="sympy"), cap)}
    skipped = set()
    for n in depths:
        if n > 2:
            if sym.get(n - 1) is None:
                skipped.add(n)
                sym[n] = None
            else:
                sym[n] = measure(dict(base, layers=n, engine="sympy"), cap)
    rows = []
    for n in depths:
        s, r = structured[n], ref[n]
        sympy_cell = "not run" if n in skipped else secs(total(sym[n]), cap)
        rows.append([str(n), secs(s["forward"]), secs(s["decimals"]), secs(total(s)), secs(s["cpu"]),
                     str(s["elements"]), sympy_cell, secs(r["forward"])])
    print(f"Growth with layers (fresh processes, structured best of {repeat}; sympy = forward+decimals, "
          f"run while the previous depth finished)")
    print(table(["layers", "structured forward", "decimals", "forward+decimals", "cpu", "elements",
                 f"sympy (cap {cap:g} s)", "float reference"], rows))
    xs = [float(n) for n in depths]

    def series(key: str, runs: dict[int, dict]) -> list[float]:
        return [runs[n][key] for n in depths]

    tot = [total(structured[n]) or 0.0 for n in depths]
    cpu = series("cpu", structured)
    added = ", ".join(f"{m}→{n}: +{tot[i + 1] - tot[i]:.2f} s"
                      for i, (m, n) in enumerate(zip(depths[:-1], depths[1:], strict=True)))
    print(f"  log-log slope (time ∝ layers^k): structured forward+decimals k = "
          f"{loglog_slope(xs, tot):.2f} (cpu k = {loglog_slope(xs, cpu):.2f}; forward alone "
          f"k = {loglog_slope(xs, series('forward', structured)):.2f}); float reference "
          f"k = {loglog_slope(xs, series('forward', ref)):.2f}")
    a, b = linear_fit(xs, tot)
    print(f"  each added layer (forward+decimals): {added}; least-squares line {a:+.2f} s "
          f"+ {b:.2f} s per layer")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n(whole benchmark: {time.perf_counter() - started:.0f} s; load average {load0:.1f} at "
          f"the start, {load:.1f} at the end on {os.cpu_count()} CPUs — wall times above grow "
          f"with the load, cpu less so)")


if __name__ == "__main__":
    main()
