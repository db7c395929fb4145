"""Reading a class roster: a CSV file with an ``id`` column, one student per row.

Layer: the edge.  Only the ``id`` column is read (its header matched without regard to
case or surrounding spaces; other columns, such as names, are ignored and never printed).
Ids are stripped of surrounding spaces; blank rows are skipped.  Refused, with the row
number: a file without an ``id`` column, an empty id, an id longer than
:data:`MAX_ID` characters or with control characters, a repeated id, and more than
``limit`` students.

>>> parse_roster("name,id\\nAda,ada1\\nBo,b2\\n", "r.csv", 10)
('ada1', 'b2')
"""

from __future__ import annotations

import csv
import io
import os

from ..errors import InputError

MAX_ID = 64
MAX_BYTES = 1_000_000


def read_roster(path: str, limit: int) -> tuple[str, ...]:
    """The student ids of a roster file, in file order."""
    if not os.path.isfile(path):
        raise InputError("no such file", file=path, key="--roster")
    if os.path.getsize(path) > MAX_BYTES:
        raise InputError(f"is larger than {MAX_BYTES} bytes", file=path, key="--roster")
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=path, key="--roster") from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", file=path, key="--roster") from None
    return parse_roster(text, path, limit)


def parse_roster(text: str, path: str, limit: int) -> tuple[str, ...]:
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InputError(f"is not valid CSV ({exc})", file=path, key="--roster") from None
    if not rows:
        raise InputError("is empty: expected a header row with an id column", file=path,
                         key="--roster")
    header = [h.strip().lower() for h in rows[0]]
    if "id" not in header:
        shown = ", ".join(repr(h) for h in rows[0]) or "none"
        raise InputError(f"has no id column (columns: {shown})", file=path, key="--roster")
    col = header.index("id")
    ids: list[str] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"row {number}"
        if col >= len(row) or not row[col].strip():
            raise InputError(f"{where} has no id", file=path, key="--roster")
        sid = row[col].strip()
        if len(sid) > MAX_ID:
            raise InputError(f"{where}: the id is longer than {MAX_ID} characters", file=path,
                             key="--roster")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in sid):
            raise InputError(f"{where}: the id has a control character", file=path,
                             key="--roster")
        if sid in seen:
            raise InputError(f"duplicate id {sid!r} (rows {seen[sid]} and {number})", file=path,
                             key="--roster")
        seen[sid] = number
        ids.append(sid)
    if not ids:
        raise InputError("has no students (no rows after the header)", file=path,
                         key="--roster")
    if len(ids) > limit:
        raise InputError(f"has {len(ids)} students; the limit is {limit}", file=path,
                         key="--roster")
    return tuple(ids)
