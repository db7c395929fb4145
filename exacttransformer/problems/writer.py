"""Writing a problem set's folder: all or nothing, never over a file without ``--force``.

Layer: the edge.  Every file is generated in memory first; then the files are written
into a temporary folder inside the output folder (so a full disk or a permission error
shows up before anything visible changes), and only then moved into place, each with an
atomic rename (an earlier run's files are first moved aside, and put back if a later
rename fails).  On any error the temporary folder is removed, and the output folder too
when this call created it.

>>> import tempfile, os
>>> d = os.path.join(tempfile.mkdtemp(), "out")
>>> write_outputs(d, {"a.txt": b"hi", "variants/b.toml": b"x"})
>>> sorted(os.listdir(d)), open(os.path.join(d, "a.txt")).read()
(['a.txt', 'variants'], 'hi')
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping

from ..errors import InputError

VARIANTS = "variants"


def check_target(folder: str, names: Mapping[str, bytes] | list[str], force: bool) -> None:
    """Refuse, before any work, an output folder that cannot be used."""
    target = os.path.abspath(folder)
    if os.path.exists(target) and not os.path.isdir(target):
        raise InputError("exists and is not a folder", file=folder, key="-o")
    if os.path.isdir(target):
        if not os.access(target, os.W_OK | os.X_OK):
            raise InputError("is not writable", file=folder, key="-o")
        tops = {n.split("/")[0]: "/" in n for n in names}
        existing = sorted(t for t in tops if os.path.lexists(os.path.join(target, t)))
        if existing and not force:
            raise InputError(f"already holds {', '.join(existing)}; use --force to "
                             "overwrite", file=folder, key="-o")
        for top in existing:
            if os.path.isdir(os.path.join(target, top)) != tops[top]:
                kind = "a folder" if tops[top] else "a file"
                raise InputError(f"{top} is in the way: it should be {kind}", file=folder,
                                 key="-o")
        return
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise InputError(f"cannot be created: the folder {parent} does not exist", file=folder,
                         key="-o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot be created: {parent} is not writable", file=folder, key="-o")


def write_outputs(folder: str, files: Mapping[str, bytes], force: bool = False) -> None:
    """Write ``files`` (relative paths, at most one folder deep) into ``folder``."""
    check_target(folder, list(files), force)
    target = os.path.abspath(folder)
    created = not os.path.isdir(target)
    try:
        os.makedirs(target, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".exacttransformer-", dir=target)
    except OSError as exc:
        raise InputError(f"cannot be written ({exc.strerror})", file=folder, key="-o") from None
    moved: list[tuple[str, str | None]] = []  # (destination, where its old version went)
    try:
        for rel, data in files.items():
            path = os.path.join(staging, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        backup = os.path.join(staging, ".old")
        os.makedirs(backup)
        for top in sorted({rel.split("/")[0] for rel in files}):
            dest = os.path.join(target, top)
            old = None
            if os.path.lexists(dest):
                old = os.path.join(backup, top)
                os.replace(dest, old)
            moved.append((dest, old))
            os.replace(os.path.join(staging, top), dest)
    except BaseException as exc:
        _roll_back(moved)
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(target, ignore_errors=True)
        if isinstance(exc, OSError):
            raise InputError(f"cannot be written ({exc.strerror or exc})", file=folder,
                             key="-o") from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _roll_back(moved: list[tuple[str, str | None]]) -> None:
    """Put back what was there before (best effort: this runs after an error)."""
    for dest, old in reversed(moved):
        try:
            if os.path.isdir(dest) and not os.path.islink(dest):
                shutil.rmtree(dest)
            elif os.path.lexists(dest):
                os.unlink(dest)
            if old is not None:
                os.replace(old, dest)
        except OSError:
            pass
