"""Writing files safely: whole (temporary file, then rename), never over an existing one
unless asked.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> write_text(os.path.join(d, "a.txt"), "hi\\n")
>>> open(os.path.join(d, "a.txt")).read()
'hi\\n'
"""

from __future__ import annotations

import os
import tempfile

from ..errors import InputError


def write_text(path: str | os.PathLike[str], text: str, *, force: bool = False) -> None:
    """Write ``text`` to ``path`` atomically; refuse to replace a file without ``force``."""
    write_bytes(path, text.encode("utf-8"), force=force)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; refuse to replace a file without ``force``."""
    target = os.fspath(path)
    if os.path.isdir(target):
        raise InputError("is a directory; give a file name", file=target)
    if os.path.exists(target) and not os.path.isfile(target):
        # A device, a pipe or a socket: renaming over it would replace it (even /dev/null).
        raise InputError("is not a regular file; give a file name, or leave out -o to print",
                         file=target)
    if os.path.exists(target) and not force:
        raise InputError("already exists; use --force to overwrite it", file=target)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise InputError(f"the folder {folder} does not exist", file=target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror})", file=target) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file private (0600); give it the permissions open() would.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
