"""Atomic file writes: a temporary file in the target's folder, fsynced, then renamed over it.

A crash, Ctrl-C or full disk mid-write never leaves a half-written file at the target path, and
an existing file there is replaced only once the new one is complete. Images, model files,
videos, video frames, job results and snapshots all go through :func:`atomic_path`. A write that
fails (no space, a read-only folder, a folder that vanished) raises :class:`WriteError`, one line
naming the target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import WriteError

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}
"""What a failed write raises, whoever the writer is: these become a :class:`WriteError`."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    For writers that want a file name (encoders, ``torch.save``); on any exception the
    temporary file is removed and ``path`` is untouched. An :class:`OSError` (other than a
    :class:`WriteError` from a nested write) becomes a :class:`WriteError` naming ``path``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".impasto-", suffix=Path(path).suffix, dir=folder)
        os.close(fd)
    except WriteError:
        raise
    except OSError as exc:  # a read-only or vanished folder, no inode left
        raise WriteError(path, exc) from exc
    try:
        try:
            yield tmp
        except OSError as exc:  # from the writer: a failed write, or its own business (reading a source)
            if isinstance(exc, WriteError) or not (exc.errno in WRITE_ERRNOS or exc.filename == tmp):
                raise
            raise WriteError(path, exc) from exc
        try:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())  # a full disk can surface only here (delayed allocation, NFS)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
            os.replace(tmp, path)
        except OSError as exc:
            raise WriteError(path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file object whose content replaces ``path`` atomically on success."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()
