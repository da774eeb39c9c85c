"""Files written safely: atomic replacement, and the file system's limits.

``atomic_write(path, chunks)`` writes a file so that a crash or a kill at any moment
leaves ``path`` holding the previous content or the new one, complete: the bytes go to a
temporary file in the same folder, are flushed to disk (``fsync``), then renamed over
``path`` (``os.replace``), and the folder is synced so the rename is durable.

The temporary file is ``.<name>.<pid>.<host>.<random>.tmp``: the writer's process id, a
hash of its machine's name, and random hex (a name too long for the file system is
shortened and given a hash of the full name). A killed writer leaves its temporary file
behind; the next ``atomic_write`` to the same file, on the same machine, deletes those
whose process no longer exists. ``checkpoint.save`` and the sweep's ``runs.csv`` both
write through here.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Iterable

__all__ = ["atomic_write", "file_version", "name_max", "probe_writable", "process_exists"]


def file_version(path: str | os.PathLike | None) -> tuple[int, int, int] | None:
    """What changes when a file is written: ``(inode, modification time in ns, size)``;
    None for no path or a file that cannot be read."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name, in bytes, that ``folder``'s file system takes (NAME_MAX,
    usually 255; 255 when the system does not say)."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no answer
        return 255
    return limit if limit and limit > 0 else 255


def probe_writable(folder: str | os.PathLike) -> None:
    """Create and remove a temporary file in ``folder``, as ``atomic_write`` would.

    Raises:
      OSError: the folder cannot be written (read-only file system, permissions, full).
    """
    probe = os.path.join(folder, f".purenn-probe.{secrets.token_hex(6)}.tmp")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.unlink(probe)


def atomic_write(path: str, chunks: Iterable[bytes], *, mode: int | None = None,
                 what: str = "atomic_write") -> None:
    """Replace ``path`` (whose folder exists; links already resolved) by the concatenated
    ``chunks``, atomically. ``mode``: the permission bits of the new file (those of the
    file it replaces), or None for those of an ordinary new file. ``what`` starts the
    message of the error raised when no temporary name is free. If it raises, ``path``
    is untouched and no temporary file is left."""
    folder, base = os.path.split(path)
    folder = folder or "."
    stem = _temp_stem(folder, base)
    _remove_stale_temps(folder, stem)
    fd, temp = _create_temp(folder, stem, mode, what)
    try:
        with open(fd, "wb", closefd=True) as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


# The end of a temporary name, after its stem: the writer's pid, a hash of its host name and
# random hex. Stems leave room for the longest pid, so that they do not depend on it.
_TEMP_END = re.compile(r"\.(\d+)\.([0-9a-f]{8})\.[0-9a-f]{8}\.tmp")
_TEMP_END_BYTES = len(".4294967295.01234567.01234567.tmp")


def _temp_stem(folder: str, base: str) -> str:
    """The start of the names of ``base``'s temporary files: ``.base``, shortened to fit
    the file system's limit on names (NAME_MAX, usually 255 bytes) with 8 hex digits of a
    hash of ``base``, so that long names sharing a beginning still get distinct stems."""
    room = name_max(folder) - len(".") - _TEMP_END_BYTES
    if len(os.fsencode(base)) <= room:
        return "." + base
    digest = hashlib.sha256(os.fsencode(base)).hexdigest()[:8]
    short = base
    while short and len(os.fsencode(short)) > room - len("~01234567"):
        short = short[:-1]  # by characters, so that a UTF-8 sequence is never cut
    return f".{short}~{digest}"


def _host_tag() -> str:
    """8 hex digits naming this machine, so that a save never judges a temporary file
    written by another machine (sharing the folder) by the process ids of its own."""
    return hashlib.sha256(socket.gethostname().encode(errors="replace")).hexdigest()[:8]


def _create_temp(folder: str, stem: str, mode: int | None, what: str) -> tuple[int, str]:
    """Create a new, empty temporary file in ``folder``: like ``tempfile.mkstemp``, but
    with the permission bits ``mode`` (those of the file it will replace) or, for None,
    those an ordinary new file gets (0o666 less the umask), not 0o600."""
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    for _ in range(100):
        temp = os.path.join(folder, f"{stem}.{os.getpid()}.{_host_tag()}."
                                    f"{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temp, flags, 0o666 if mode is None else mode)
        except FileExistsError:
            continue
        if mode is not None:  # os.open applied the umask; the replaced file's bits win
            with contextlib.suppress(OSError):  # file systems without modes (FAT, SMB)
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)
                else:
                    os.chmod(temp, mode)
        return fd, temp
    raise FileExistsError(errno.EEXIST, f"{what}: no free temporary file name", folder)


def _remove_stale_temps(folder: str, stem: str) -> None:
    """Delete the temporary files that killed saves to the same file left in ``folder``:
    those of this machine whose process no longer exists. Anything else is left alone."""
    host = _host_tag()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMP_END.fullmatch(name, len(stem)) if name.startswith(stem) else None
        if match and match[2] == host and not process_exists(int(match[1])):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine; True when unsure."""
    if os.name == "nt":  # there os.kill(pid, 0) would terminate the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: it exists, and belongs to another user
        return True
    return True


def _fsync_folder(folder: str) -> None:
    """Make the rename durable. Platforms and filesystems that cannot open or sync a
    folder (Windows, some network filesystems) are skipped: the rename is still atomic."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
