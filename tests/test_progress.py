"""Long work is visible and stoppable (issue 12): progress on a terminal, ``--quiet``,
``--timeout`` and Ctrl-C.

The slow command in these tests is a model that the sympy engine cannot finish in hours
(``--engine sympy`` on :data:`test_engine.HANG`), so "still running after a second" is
certain, not a matter of timing; no test asserts how long anything takes.
"""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_engine import HANG

from exacttransformer import progress
from exacttransformer.cli import main
from exacttransformer.errors import InputError

ROOT = Path(__file__).resolve().parent.parent


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, and tells when something was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Event()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


def test_describe_names_the_node_its_place_and_the_engine() -> None:
    progress.at("computing", 22, 189, ("weights", 1, 0), engine="exact")
    assert progress.describe() == "computing weights[layer 1, head 0] (node 23 of 189, sympy engine)"
    assert "--engine structured" in progress.advice()
    progress.at("printing", 0, 5, ("loss", None, None), engine="structured")
    assert progress.describe() == "printing loss (step 1 of 5, structured engine)"
    assert "--digits" in progress.advice()
    progress.reset()
    assert progress.describe() == ""


def test_a_terminal_sees_the_progress_line_and_it_is_cleared_at_the_end() -> None:
    term = _Terminal()
    with progress.watch(stream=term, delay=0, interval=0.01):
        progress.at("computing", 3, 40, ("z", 0, 1), engine="structured")
        assert term.written.wait(30)
    text = term.getvalue()
    # (cut to the terminal's width: 79 columns when the width is unknown, as here)
    assert "exacttransformer [0 s]: computing z[layer 0, head 1] (node 4 of 40, struct" in text
    assert text.endswith("\r\x1b[K")  # the line is erased, nothing is left on the screen
    assert progress.describe() == ""  # forgotten when the command ends


@pytest.mark.parametrize("quiet, tty", [(True, True), (False, False)])
def test_nothing_is_shown_when_quiet_or_not_a_terminal(quiet: bool, tty: bool) -> None:
    stream = _Terminal() if tty else io.StringIO()
    with progress.watch(stream=stream, quiet=quiet, delay=0, interval=0.01):
        progress.at("computing", 0, 1, ("x", 0, None))
        time.sleep(0.2)
    assert stream.getvalue() == ""


def test_the_time_limit_names_the_activity() -> None:
    with pytest.raises(progress.TimedOut) as caught, progress.watch(timeout=0.05):
        progress.at("computing", 4, 10, ("scores", 1, 0), engine="exact")
        while True:  # pure-Python work, as sympy's is
            sum(range(1000))
    message = str(caught.value)
    assert message.startswith("stopped after the --timeout of 0.05 s while computing "
                              "scores[layer 1, head 0] (node 5 of 10, sympy engine)")
    assert "--engine structured" in message
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.default_int_handler, None)


def test_the_time_limit_fires_again_when_the_first_is_swallowed() -> None:
    swallowed = 0
    with pytest.raises(progress.TimedOut), progress.watch(timeout=0.05):
        while True:
            try:
                while True:
                    sum(range(1000))
            except progress.TimedOut:  # as a careless "except BaseException" would
                swallowed += 1
                if swallowed > 1:
                    raise
    assert swallowed == 2


def test_timeout_on_the_command_line_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["walkthrough", "cat", "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err
    assert main(["walkthrough", "cat", "--timeout", "soon"]) == 2


def _slow(tmp_path: Path) -> Path:
    path = tmp_path / "hang.toml"
    path.write_text(HANG)
    return path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "exacttransformer", *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "EXACTTRANSFORMER_ENGINE"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_timeout_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    run = subprocess.run(_cli("walkthrough", str(_slow(tmp_path)), "--engine", "sympy",
                              "--format", "json", "-o", str(out), "--timeout", "1"),
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("exacttransformer: error: stopped after the --timeout of 1 s "
                               "while computing ")
    assert "sympy engine" in lines[0] and "try --engine structured" in lines[0]
    assert run.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hang.toml"]


def _on_a_terminal(args: list[str], interrupt_when: str | None = None) -> tuple[int, str]:
    """Run ``args`` with stderr on a pseudo-terminal; its exit status and what it showed.
    With ``interrupt_when``, send SIGINT (Ctrl-C) once that text has been shown."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env=_env())
    os.close(slave)
    shown = b""
    while True:
        if interrupt_when is not None and interrupt_when.encode() in shown:
            proc.send_signal(signal.SIGINT)
            interrupt_when = None
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=120), shown.decode("utf-8", "replace")


def test_a_long_command_on_a_terminal_shows_which_node_it_computes(tmp_path: Path) -> None:
    status, shown = _on_a_terminal(_cli("walkthrough", str(_slow(tmp_path)), "--engine",
                                        "sympy", "--timeout", "3"))
    assert status == 2
    assert "\r\x1b[Kexacttransformer [" in shown
    assert "s]: computing " in shown and " of 189, sympy engine)" in shown
    assert "exacttransformer: error: stopped after the --timeout" in shown


def test_quiet_shows_no_progress_on_a_terminal(tmp_path: Path) -> None:
    status, shown = _on_a_terminal(_cli("walkthrough", str(_slow(tmp_path)), "--engine",
                                        "sympy", "--timeout", "3", "--quiet"))
    assert status == 2
    assert "\x1b[K" not in shown
    assert shown.startswith("exacttransformer: error: stopped after the --timeout of 3 s")


def test_a_time_limit_outside_the_main_thread_is_refused() -> None:
    caught: list[BaseException] = []

    def work() -> None:
        try:
            with progress.watch(timeout=1):
                pass
        except BaseException as exc:  # handed to the main thread
            caught.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert len(caught) == 1 and isinstance(caught[0], InputError)
    assert "--timeout" in str(caught[0]) and "main thread" in str(caught[0])


def test_ctrl_c_exits_130_without_a_traceback_or_a_partial_file(tmp_path: Path) -> None:
    """Ctrl-C once the work is under way: the progress line says it is computing."""
    out = tmp_path / "out.json"
    args = _cli("walkthrough", str(_slow(tmp_path)), "--engine", "sympy", "--format", "json",
                "-o", str(out))
    status, shown = _on_a_terminal(args, interrupt_when="computing")
    assert status == 130
    assert "Traceback" not in shown
    assert "exacttransformer: interrupted while computing " in shown
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hang.toml"]


def test_the_command_line_module_loads_no_sympy() -> None:
    """The command-line module loads no sympy, so a Ctrl-C during the imports reaches
    main(), which turns it into status 130."""
    probe = "import sys, exacttransformer.cli; print('sympy' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=_env(), timeout=120)
    assert run.stdout.strip() == "False"


def test_an_interrupt_during_the_imports_exits_130(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from exacttransformer import cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["walkthrough", "cat"]) == 130
    assert capsys.readouterr().err == "exacttransformer: interrupted\n"
