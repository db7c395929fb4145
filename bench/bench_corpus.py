"""The stress corpus (tests/corpus.py, issue 12): every model's whole walkthrough, timed.

One run, one printed table (a measurement, not a timed test).  Each model's walkthrough
(all nodes, ``--format json --digits 15``) runs in a **fresh process**, for three reasons:
it is what a user waits for (``exacttransformer walkthrough FILE`` starts a Python, imports
sympy and the package, then computes), so the ratio to ``python -c "import sympy"`` compares
like with like; no sympy cache, interned atom or cached enclosure carries over from one model
to the next, so a model's time does not depend on the models run before it; and a model
that hangs or eats memory can be stopped cleanly (killed at ``--timeout`` seconds, its
address space capped at ``--memory`` GB) without taking the benchmark with it.  The child
runs the walkthrough as the command does (load, forward, the JSON renderer) through the
library, so that it can report ``trace.backend``, the engine ``auto`` chose.

Default: every model under ``auto``; prints the slowest ten with their times, the engine
chosen and the ratio to ``import sympy`` (measured in the same run, median of 5).
Goal: the slowest model takes at most 3x ``import sympy``.

``--compare``: the data of issue 12's report instead: for every model the time under
``--engine structured``, whether ``--engine sympy`` finishes within ``--timeout`` and its time,
the largest sympy tree of the trace (nodes, counted up to a cap) when it does, whether
the two engines' certified digits agree, and whether the structured decimals agree with
the float64 reference (tests/corpus.FLOAT_TOLERANCE).

Run: ``python bench/bench_corpus.py [--timeout S] [--memory GB] [--only NAME ...]``, or
``python bench/bench_corpus.py --compare --timeout 20 [--structured-timeout S]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from _timing import wall  # noqa: E402
from corpus import CORPUS, by_name, digit_differences, reference_differences  # noqa: E402

GOAL = 3.0
TREE_CAP = 1_000_000


def child(name: str, engine: str, memory_gb: float, out_path: str) -> None:
    """Run one model's walkthrough in this (fresh) process; write a JSON result."""
    import resource

    limit = int(memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from corpus import walkthrough

    result: dict = {"name": name, "engine": engine}
    try:
        t0 = time.perf_counter()
        backend, out = walkthrough(by_name(name), engine)
        result.update(ok=True, backend=backend, inside=time.perf_counter() - t0, out=out)
        if backend == "exact":
            result["tree"] = _largest_tree(by_name(name))
    except MemoryError:
        result.update(ok=False, error=f"MemoryError (over {memory_gb:g} GB)")
    except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure as data
        result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    Path(out_path).write_text(json.dumps(result), encoding="utf-8")


def _largest_tree(m: object) -> int:
    """The largest sympy tree among the trace's values (nodes, up to :data:`TREE_CAP`):
    the forward pass again (sympy's cache makes it cheap), then a count per element."""
    from corpus import CorpusModel

    from exacttransformer.io.files import loads
    from exacttransformer.numbers import node_count

    assert isinstance(m, CorpusModel)
    trace = loads(m.text, m.name).forward(engine="sympy")
    return max((node_count(x, TREE_CAP) for step in trace for row in step.value for x in row),
               default=0)


def run(name: str, engine: str, timeout: float, memory_gb: float) -> dict:
    """One model under one engine in a fresh process: the result and the wall time."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_corpus_{os.getpid()}_{name}_{engine}.json"
    cmd = [sys.executable, __file__, "--child", name, engine, str(memory_gb), str(out)]
    t0 = time.perf_counter()
    try:
        subprocess.run(cmd, timeout=timeout, check=False, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return {"name": name, "engine": engine, "ok": False, "timeout": True,
                "seconds": time.perf_counter() - t0, "error": f"over {timeout:g} s"}
    seconds = time.perf_counter() - t0
    try:
        result = json.loads(out.read_text(encoding="utf-8"))
        out.unlink()
    except (OSError, ValueError):
        result = {"name": name, "engine": engine, "ok": False, "error": "the process died"}
    result["seconds"] = seconds
    return result


def import_sympy() -> float:
    return statistics.median(wall([sys.executable, "-c", "import sympy"], 1) for _ in range(5))


def bench_auto(names: list[str], timeout: float, memory_gb: float) -> None:
    base = import_sympy()
    print(f"python -c 'import sympy': {base:.3f} s (median of 5)")
    results = []
    for name in names:
        r = run(name, "auto", timeout, memory_gb)
        results.append(r)
        print(f"  {name:8} {r['seconds']:7.2f} s  {r.get('backend') or r.get('error')}", flush=True)
    results.sort(key=lambda r: -r["seconds"])
    print(f"\nslowest ten of {len(results)} (whole walkthrough, JSON, 15 digits, engine auto):")
    print(f"{'model':8} {'seconds':>8} {'x import sympy':>15}  engine   options")
    for r in results[:10]:
        engine = r.get("backend") or ("TIMEOUT" if r.get("timeout") else "FAILED")
        print(f"{r['name']:8} {r['seconds']:8.2f} {r['seconds'] / base:15.1f}  {engine:10} "
              f"{by_name(r['name']).summary()}")
    worst = results[0]["seconds"] / base if results else 0.0
    failed = sum(1 for r in results if not r["ok"])
    print(f"\nslowest / import sympy = {worst:.1f} (goal <= {GOAL:g}); {failed} of "
          f"{len(results)} did not finish: {'MET' if worst <= GOAL and not failed else 'NOT MET'}")


def bench_compare(names: list[str], timeout: float, memory_gb: float,
                  structured_timeout: float) -> None:
    print(f"{'model':8} {'structured':>12} {'sympy':>12} {'tree':>8}  digits  float ref  options")
    for name in names:
        m = by_name(name)
        s = run(name, "structured", structured_timeout, memory_gb)
        e = run(name, "sympy", timeout, memory_gb)
        digits = ("agree" if not digit_differences(s["out"], e["out"]) else "DIFFER"
                  ) if s["ok"] and e["ok"] else "-"
        ref = "-"
        if s["ok"]:
            n, problems = reference_differences(m, s["out"])
            ref = f"{n} ok" if not problems else f"{len(problems)} OFF"
        print(f"{name:8} {_cell(s):>12} {_cell(e):>12} {e.get('tree', '-')!s:>8}  {digits:6}  "
              f"{ref:9}  {m.summary()}", flush=True)
        for r in (s, e):
            if not r["ok"] and not r.get("timeout"):
                print(f"         {r['engine']} FAILED: {r['error'][:300]}")
        if digits == "DIFFER":
            for line in digit_differences(s["out"], e["out"])[:5]:
                print(f"         differ: {line[:300]}")


def _cell(r: dict) -> str:
    if r["ok"]:
        return f"{r['seconds']:.2f} s"
    return f">{r['seconds']:.0f} s" if r.get("timeout") else "FAILED"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds allowed to one model before it is stopped (default 60)")
    p.add_argument("--memory", type=float, default=4.0,
                   help="address space allowed to one model, in GB (default 4)")
    p.add_argument("--compare", action="store_true",
                   help="both engines per model, digits and the float reference (the data table)")
    p.add_argument("--structured-timeout", type=float, default=120.0,
                   help="with --compare: seconds allowed to --engine structured (default 120)")
    p.add_argument("--only", nargs="*", help="these corpus models only")
    a = p.parse_args()
    names = a.only or [m.name for m in CORPUS]
    if a.compare:
        bench_compare(names, a.timeout, a.memory, a.structured_timeout)
    else:
        bench_auto(names, a.timeout, a.memory)


if __name__ == "__main__":
    main()
