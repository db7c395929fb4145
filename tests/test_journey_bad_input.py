"""Bad input for the journey (docs/nodes.md, "Bad input"): every case exits with status 2 and
one line naming the file and the key, with no traceback and no output file, from both
``walkthrough`` and ``check``.

Each case is a small walkthrough file written to ``tmp_path`` from :data:`BASE` with one
thing wrong, and run through the command line's ``main`` (as ``tests/test_cli.py`` does).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exacttransformer.cli import main

BASE = """
title = "a three-word model"

[model]
mask = "causal"
positional = "{positional}"
temperature = {temperature}
learning_rate = {learning_rate}

[input]
vocab  = ["The", "storm", "is"]
tokens = {tokens}
E = [[1, 0], [0, 1], [1, 1]]
{input_extra}

[weights]
P = [[0, 0], [0, 1], [1, 0]]
W_Q = {W_Q}
W_K = {W_K}
W_V = [[1, 0], [0, 1]]
W_O = [[1, 0], [0, 1]]
W1  = [[1, 0], [0, 1]]
W2  = [[1, 0], [0, 1]]
W_U = [[1, 0, 1], [0, 1, 1]]

[decoding]
{decoding}

[[claims]]
name = "greedy"
value = "0"
"""

DEFAULTS = {
    "positional": "learned", "temperature": '"1"', "learning_rate": '"1/10"',
    "tokens": '["The", "storm"]', "input_extra": "",
    "W_Q": "[[1, 0], [0, 1]]", "W_K": "[[1, 0], [0, 1]]", "decoding": "top_k = 2",
}


def text(**changes: str) -> str:
    return BASE.format(**{**DEFAULTS, **changes})


# case: (the file's text, the key the message must name, words it must contain)
CASES: dict[str, tuple[str, str, str]] = {
    "unknown_token": (text(tokens='["The", "rain"]'), "input.tokens", "'rain'"),
    "unk_outside_vocab": (text(tokens='["The", "rain"]', input_extra='unk = "<unk>"'),
                          "input.unk", "'<unk>'"),
    "target_text": (text(input_extra='target = "banana"'), "input.target", "'banana'"),
    "target_index": (text(input_extra="target = 3"), "input.target", "0…2"),
    "target_negative": (text(input_extra="target = -1"), "input.target", "outside"),
    "temperature_0": (text(temperature='"0"'), "model.temperature", "positive"),
    "temperature_negative": (text(temperature="-2"), "model.temperature", "positive"),
    "temperature_float_0": (text(temperature="0.0"), "model.temperature", "positive"),
    "temperature_text": (text(temperature='"hot"'), "model.temperature", "hot"),
    "top_p_0": (text(decoding='top_p = "0"'), "decoding.top_p", "(0, 1]"),
    "top_p_above_1": (text(decoding='top_p = "1.5"'), "decoding.top_p", "(0, 1]"),
    "top_p_negative": (text(decoding="top_p = -0.25"), "decoding.top_p", "(0, 1]"),
    "top_p_text": (text(decoding='top_p = "most"'), "decoding.top_p", "most"),
    "top_k_0": (text(decoding="top_k = 0"), "decoding.top_k", "at least 1"),
    "top_k_negative": (text(decoding="top_k = -3"), "decoding.top_k", "at least 1"),
    "top_k_fraction": (text(decoding="top_k = 1.5"), "decoding.top_k", "whole number"),
    "beam_too_wide": (text(decoding="beam_width = 4"), "decoding.beam_width",
                      "larger than the vocabulary (3 words)"),
    "learning_rate_word": (text(learning_rate='"fast"'), "model.learning_rate", "fast"),
    "learning_rate_bool": (text(learning_rate="true"), "model.learning_rate", "boolean"),
    "learning_rate_list": (text(learning_rate="[1]"), "model.learning_rate", "number"),
    "learning_rate_code": (text(learning_rate="\"__import__('os')\""), "model.learning_rate",
                           "__import__"),
    "u_1": (text(decoding='u = "1"'), "decoding.u", "[0, 1)"),
    "u_negative": (text(decoding="u = -0.1"), "decoding.u", "[0, 1)"),
    "u_second_of_list": (text(decoding='u = ["0.5", "1.25"]'), "decoding.u[1]", "1.25"),
    "u_empty": (text(decoding="u = []"), "decoding.u", "[0, 1)"),
    "steps_past_P": (text(decoding="steps = 3"), "decoding.steps", "P has only 3 rows"),
    "rope_odd_head": (text(positional="rope", W_Q="[[1, 0, 0], [0, 1, 0]]",
                           W_K="[[1, 0, 0], [0, 1, 0]]"), "model.positional", "odd"),
    "bpe_text_and_tokens": (text(input_extra='text = "the storm"'), "input.tokens", "not both"),
}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(status: int, out: str, err: str, path: Path, key: str, words: str) -> None:
    assert status == 2, err
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"{path}: {key}: " in lines[0]
    assert words in lines[0]


def test_the_base_file_is_good(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Without this, a case could pass because the base file itself were broken.
    path = tmp_path / "good.toml"
    path.write_text(text())
    status, out, err = run(["walkthrough", str(path)], capsys)
    assert (status, err) == (0, "")
    assert "greedy" in out and "top_k_probs" in out
    status, _, err = run(["check", str(path)], capsys)
    assert status in (0, 1) and "Traceback" not in err


@pytest.mark.parametrize("case", sorted(CASES))
def test_walkthrough_refuses_bad_input(case: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    body, key, words = CASES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(body)
    out_file = tmp_path / "out.txt"
    status, out, err = run(["walkthrough", str(path), "-o", str(out_file)], capsys)
    assert_refused(status, out, err, path, key, words)
    assert not out_file.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_refuses_bad_input(case: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    body, key, words = CASES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(body)
    status, out, err = run(["check", str(path), "--format", "json"], capsys)
    assert_refused(status, out, err, path, key, words)


def test_bpe_piece_outside_the_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bpe.toml"
    path.write_text('[input]\ntext = "hug zebra"\ncorpus = "hug hugs"\nmerges = 2\n')
    status, out, err = run(["walkthrough", str(path)], capsys)
    assert_refused(status, out, err, path, "input.text", "'z'")


def test_bpe_unk_outside_the_bpe_vocabulary(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bpe.toml"
    path.write_text('[input]\ntext = "hug zebra"\ncorpus = "hug hugs"\nunk = "<unk>"\n'
                    "merges = 2\n")
    status, out, err = run(["walkthrough", str(path)], capsys)
    assert_refused(status, out, err, path, "input.unk", "'<unk>'")
