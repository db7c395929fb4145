"""The SHA-256 digest of every output the worked examples produce, to prove a change left
them byte-identical (issue 14).

``python tools/output_digests.py`` prints the digests that differ from the recorded file
``tests/output_digests.json`` (exit 1 if any); ``--record`` rewrites that file, for an issue
that changes output on purpose (say so in its commit).  ``tests/test_outputs.py`` runs the
same comparison in CI.  Everything runs in this process through ``exacttransformer.cli.main``,
so the check does not depend on where the package's modules live.

The outputs: for each ``worked_examples/*.toml`` the walkthrough as text, JSON and Markdown
at ``--digits 8``, the LaTeX document (``-o -``), and ``check --format json`` (with its exit
status); plus one small problem set over every topic (every file it writes).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "worked_examples"
RECORD = ROOT / "tests" / "output_digests.json"
DIGITS = "8"
TOPICS = ("projection,scores,softmax,attention,multihead,residual,ffn,layernorm,block,"
          "positional,logits,decoding,training")


def _run(argv: list[str]) -> bytes:
    """Standard output, standard error and the exit status of one command, as bytes."""
    from exacttransformer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return f"{out.getvalue()}\n--stderr--\n{err.getvalue()}\n--status {status}\n".encode()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def outputs() -> Iterator[tuple[str, str]]:
    """(name, SHA-256) of every output, in a fixed order."""
    for path in sorted(EXAMPLES.glob("*.toml")):
        name, file = path.name, str(path.relative_to(ROOT))
        for fmt in ("text", "json", "markdown"):
            yield (f"{name} walkthrough {fmt}",
                   _digest(_run(["walkthrough", file, "--digits", DIGITS, "--format", fmt,
                                 "--quiet"])))
        yield f"{name} latex", _digest(_run(["latex", file, "-o", "-", "--quiet"]))
        yield f"{name} check json", _digest(_run(["check", file, "--format", "json", "--quiet"]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "set"
        status = _run(["problems", "--seed", "issue14", "--count", "2", "--topic", TOPICS,
                       "--difficulty", "easy", "--moodle", "--jobs", "1", "-o", str(folder),
                       "--quiet"]).replace(str(folder).encode(), b"DIR")
        yield "problems status", _digest(status)
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            yield f"problems {file.relative_to(folder).as_posix()}", _digest(file.read_bytes())


def compare(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """The names whose digest differs, is new, or is missing."""
    return sorted(n for n in set(recorded) | set(now) if recorded.get(n) != now.get(n))


def main(argv: list[str]) -> int:
    os_path = str(ROOT)
    if os_path not in sys.path:
        sys.path.insert(0, os_path)
    now = dict(outputs())
    if "--record" in argv:
        RECORD.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(now)} digests in {RECORD.relative_to(ROOT)}")
        return 0
    differ = compare(json.loads(RECORD.read_text()), now)
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(now)} outputs, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
