"""``exacttransformer problems``: per-student problem sets with keys (SPEC §5).

``--seed S --count N`` (or ``--roster FILE.csv``) ``--topic T[,T…] -o DIR``: writes
``problems.tex``, ``solutions.tex``, ``answers.json``, ``variants/*.toml`` and, with
``--moodle``, ``quiz.xml``.  The same command writes the same bytes.  Bad input (unknown
topic, impossible constraints, a bad roster, a count of 0 or above the limit, an unusable
folder) exits 2 with a message and writes nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

SIZE_OPTIONS = ("tokens", "d_model", "d_head", "decimals", "max_entry")


def _seed(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text):
        raise argparse.ArgumentTypeError(
            f"expected 1 to 64 letters, digits, '.', '_' or '-', got {text!r}")
    return text


def _count(text: str) -> int:
    from ..problems.specs import MAX_COUNT

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= n <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_COUNT}, got {n}")
    return n


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= n <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {n}")
    return n


def _size(option: str) -> Any:
    def parse(text: str) -> int:
        from ..problems.specs import check_limits

        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        problem = check_limits(option, n)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return n
    return parse


def add_parser(sub: Any) -> None:
    from ..problems.specs import DIFFICULTIES, MAX_COUNT
    from ..problems.topics import TOPICS

    p = sub.add_parser(
        "problems", help="per-student problem sheets, solutions, key and Moodle quiz",
        description="Seeded problem sets with nice numbers: every variant satisfies its "
                    "topic's constraints, checked on the exact trace. Topics: "
                    + ", ".join(f"{t.name} ({t.summary})" for t in TOPICS.values()) + ".")
    p.add_argument("--seed", type=_seed, required=True,
                   help="any word or number; the same seed gives the same files")
    p.add_argument("--count", type=_count,
                   help=f"number of variants, 1 to {MAX_COUNT} (or use --roster)")
    p.add_argument("--topic", default="attention",
                   help="comma-separated topics (default attention): " + ", ".join(TOPICS))
    p.add_argument("--difficulty", choices=DIFFICULTIES, default="medium")
    p.add_argument("--roster", help="a CSV file with an 'id' column: one variant per student, "
                                    "derived only from (seed, id)")
    p.add_argument("-o", "--output", required=True, help="the folder to write into")
    p.add_argument("--moodle", action="store_true", help="also write quiz.xml (Moodle XML)")
    p.add_argument("--force", action="store_true", help="overwrite files from an earlier run")
    p.add_argument("--jobs", type=_jobs, metavar="N",
                   help="worker processes (default: one per CPU); the files are the same")
    for option in SIZE_OPTIONS:
        flag = "--" + option.replace("_", "-")
        p.add_argument(flag, dest=option, type=_size(option), metavar="N",
                       help=f"override the difficulty's {option.replace('_', ' ')}")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..problems import MAX_COUNT, Request, make_files
    from ..problems.generator import check_request, parse_topics
    from ..problems.roster import read_roster
    from ..problems.writer import check_target, write_outputs

    topics = parse_topics(args.topic)
    if args.roster:
        students = read_roster(args.roster, MAX_COUNT)
        if args.count is not None and args.count != len(students):
            raise InputError(f"--count {args.count} but the roster has {len(students)} "
                             "students; drop --count", key="--count")
    elif args.count is None:
        raise InputError(f"give --count N (1 to {MAX_COUNT}) or --roster FILE.csv",
                         key="--count")
    else:
        students = tuple(str(n) for n in range(1, args.count + 1))
    overrides = {o: getattr(args, o) for o in SIZE_OPTIONS if getattr(args, o) is not None}
    request = Request(seed=args.seed, topics=topics, difficulty=args.difficulty,
                      students=students, rostered=bool(args.roster), overrides=overrides)
    check_request(request)
    names = ["problems.tex", "solutions.tex", "answers.json", "variants/"]
    if args.moodle:
        names.append("quiz.xml")
    check_target(args.output, names, args.force)
    files = make_files(request, moodle=args.moodle, workers=args.jobs)
    write_outputs(args.output, files, force=args.force)
    print(f"wrote {len(students)} variant{'s' if len(students) != 1 else ''} of "
          f"{', '.join(topics)} to {args.output}", file=sys.stderr)
    return 0
