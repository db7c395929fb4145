"""The command line: walkthrough output, JSON shape, and every bad input exiting 2."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from exacttransformer.cli import main

ROOT = Path(__file__).parent.parent
CAT = (ROOT / "worked_examples" / "cat.toml").read_text()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_json_cat_rows(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["walkthrough", "cat", "--format", "json"], capsys)
    assert status == 0
    data = json.loads(out)
    steps = {(s["name"], s["layer"], s["head"]): s for s in data["steps"]}
    cat = data["tokens"].index("cat")
    assert steps[("out", 0, None)]["exact"][cat] == ["7", "10", "5", "6"]
    assert steps[("z", 0, 0)]["exact"][cat] == ["1", "1"]
    weights = steps[("weights", 0, 0)]
    assert weights["shape"] == [3, 3]
    assert weights["approx"][cat] == ["0.503490", "0.248255", "0.248255"]
    for step in data["steps"]:
        assert set(step) >= {"name", "layer", "head", "shape", "exact", "approx"}


def test_digits_option(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["walkthrough", "cat", "--format", "json", "--digits", "3"], capsys)
    assert status == 0
    steps = {s["name"]: s for s in json.loads(out)["steps"]}
    assert steps["exp_scores"]["approx"][1] == ["8.34", "4.11", "4.11"]
    assert steps["exp_sum"]["approx"][1] == ["16.6"]


def test_text_follows_one_token(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["walkthrough", "cat", "--token", "cat"], capsys)
    assert status == 0
    assert "Following the token 'cat'" in out
    assert "exp(3*sqrt(2)/2)" in out
    assert "8.34214" in out
    assert "[7, 10, 5, 6]" in out
    assert "[9, 8, 6, 5]" not in out  # other tokens' outputs are not shown


def test_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["walkthrough", "cat", "--format", "markdown", "--token", "1"], capsys)
    assert status == 0
    assert out.startswith("# Following")
    assert r"\begin{bmatrix}" in out


def test_output_file_is_written_whole_and_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cat.txt"
    assert run(["walkthrough", "cat", "-o", str(target)], capsys)[0] == 0
    first = target.read_bytes()
    status, _, err = run(["walkthrough", "cat", "-o", str(target)], capsys)
    assert status == 2 and "--force" in err
    assert run(["walkthrough", "cat", "-o", str(target), "--force"], capsys)[0] == 0
    assert target.read_bytes() == first  # deterministic
    assert [p.name for p in tmp_path.iterdir()] == ["cat.txt"]  # no temporary left behind


def test_a_device_or_pipe_is_never_replaced_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files are written by renaming a temporary file over the target, which would turn
    ``-o /dev/null --force`` into a regular file where the device was."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    status, _, err = run(["walkthrough", "cat", "-o", str(fifo), "--force"], capsys)
    assert status == 2 and "is not a regular file" in err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    status, _, err = run(["walkthrough", "cat", "-o", os.devnull, "--force"], capsys)
    assert status == 2 and "is not a regular file" in err
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


BAD = {
    "missing_weight": (CAT.replace("W_K = [[1, 1], [0, 1], [1, 0], [0, 1]]\n", ""), "W_K"),
    "shapes": (CAT.replace("W_Q = [[1, 0], [0, 1], [1, 0], [0, 1]]", "W_Q = [[1, 0], [0, 1]]"),
               "W_Q is 2×2"),
    "non_numeric": (CAT.replace("W_O = [[1, 0, 1, 0]", 'W_O = [["one", 0, 1, 0]'), "W_O[0][0]"),
    "injection": (CAT.replace('W_O = [[1, 0, 1, 0]',
                              "W_O = [[\"__import__('os').system('echo hacked')\", 0, 1, 0]"),
                  "W_O[0][0]"),
    "bomb": (CAT.replace("W_O = [[1, 0, 1, 0]", 'W_O = [["9**9**9", 0, 1, 0]'), "W_O[0][0]"),
    "toml_syntax": (CAT.replace("heads = 1", "heads = = 1"), "TOML"),
    "relu6": (CAT.replace('activation = "relu"', 'activation = "relu6"'), "did you mean 'relu'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_exit_2_with_one_clear_message(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out_file = tmp_path / "out.txt"
    status, out, err = run(["walkthrough", str(path), "-o", str(out_file)], capsys)
    assert status == 2
    assert out == ""
    assert str(path) in err and expected in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out_file.exists()


def test_injection_executes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    text = CAT.replace("W_O = [[1, 0, 1, 0]",
                       f"W_O = [[\"__import__('pathlib').Path('{marker}').touch()\", 0, 1, 0]")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert run(["walkthrough", str(path)], capsys)[0] == 2
    assert not marker.exists()


def test_missing_file_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["walkthrough", str(tmp_path / "nope.toml")], capsys)
    assert status == 2 and "no such file" in err
    status, _, err = run(["walkthrough", str(tmp_path)], capsys)
    assert status == 2 and "directory" in err


def test_unknown_token_and_bad_digits(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["walkthrough", "cat", "--token", "dog"], capsys)
    assert status == 2 and "--token" in err and "dog" in err
    status, _, err = run(["walkthrough", "cat", "--digits", "0"], capsys)
    assert status == 2


def test_python_dash_m_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD["bomb"][0])
    proc = subprocess.run([sys.executable, "-m", "exacttransformer", "walkthrough", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "exacttransformer", "walkthrough", "cat",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    steps = json.loads(proc.stdout)["steps"]
    out = next(s for s in steps if s["name"] == "out")
    assert out["exact"][1] == ["7", "10", "5", "6"]
