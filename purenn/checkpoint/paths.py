"""The paths ``save`` and ``load`` take: checked as arguments, and as files (only a regular
file is read or replaced; a folder, a FIFO or a device is refused before any work)."""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["check_path", "check_regular", "save_target"]


def check_path(path, what: str) -> str:
    """``path`` (str, bytes or os.PathLike) as a non-empty str; ``what`` begins messages."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: path must be a str or os.PathLike (e.g. "
                        f"'run.safetensors' or pathlib.Path); got {type(path).__name__}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{what}: the path is empty; give a file name, e.g. "
                         f"'run.safetensors'")
    return path


_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket")]


def _kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words: "a regular file", "a FIFO", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def _via(path: str) -> str:
    """`` (a link to '...')`` when ``path`` leads through symbolic links, for messages."""
    real = os.path.realpath(path)
    return f" (a link to {real!r})" if real != os.path.abspath(path) else ""


def save_target(path: str) -> tuple[str, int | None]:
    """The file that ``save(path, ...)`` writes: ``path`` with symbolic links resolved, so
    that a link is kept and the file it points to replaced; and that file's permission bits,
    or None for a new file. Refuses, before any work, what save could not write."""
    if path.endswith((os.sep, os.altsep or os.sep)):
        raise ValueError(f"checkpoint.save: {path!r} ends with a path separator; give a file "
                         f"name, e.g. {os.path.join(path, 'run.safetensors')!r}")
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise NotADirectoryError(errno.ENOTDIR, f"checkpoint.save: cannot write "
                                     f"{path!r}: {folder!r} is not a folder", folder)
        raise FileNotFoundError(errno.ENOENT, f"checkpoint.save: cannot write {path!r}: the "
                                f"folder {folder!r} does not exist; create it first with "
                                f"os.makedirs({folder!r})", folder)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target, None
    kind = _kind(mode)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, f"checkpoint.save: {path!r}{_via(path)} is a "
                                f"folder; give a file name, e.g. "
                                f"{os.path.join(path, 'run.safetensors')!r}", path)
    if kind != "a regular file":
        raise ValueError(f"checkpoint.save: {path!r}{_via(path)} is {kind}, not a regular "
                         f"file; save replaces only files")
    return target, stat.S_IMODE(mode) & 0o777


def check_regular(mode: int, path: str, where: str) -> None:
    """Refuse anything but a regular file: a folder, a FIFO, a device, a socket."""
    kind = _kind(mode)
    if kind == "a folder":
        raise IsADirectoryError(errno.EISDIR, f"{where}{_via(path)} is a folder; pass the "
                                f".safetensors file", path)
    if kind != "a regular file":
        raise ValueError(f"{where}{_via(path)} is {kind}, not a regular file; load reads "
                         f"checkpoint files, as save writes them")

