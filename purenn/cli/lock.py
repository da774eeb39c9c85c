"""One writer at a time per folder: a lock file that names its holder.

``FolderLock(folder, command).acquire()`` creates ``folder/sweep.lock`` holding the
process id, the machine's name, the start time and the command of the process that holds
it. The file is made whole before it appears (written aside, then hard-linked into place,
which fails when the lock exists), so a reader never sees half a holder. ``release()``
removes it. A second process finds the file and gets ``LockHeld`` with its ``Holder``;
a lock whose holder is gone (its process no longer exists on this machine, after a kill
or a crash) is taken over: ``acquire`` returns the old holder so that the caller can say
so. A lock held from another machine, or one that does not name its holder, is never
judged stale: only a person can know it is.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from typing import NamedTuple

from purenn.files import process_exists

__all__ = ["LOCK", "FolderLock", "Holder", "LockHeld"]

LOCK = "sweep.lock"  # the lock file's name in its folder
_FIELDS = ("pid", "host", "started", "command")


class Holder(NamedTuple):
    """The process that holds a lock, as its lock file names it."""

    pid: int
    host: str  # socket.gethostname() of its machine
    started: str  # when it took the lock, local time: "2026-12-03 14:05:09 +0100"
    command: str  # its command line, e.g. "purenn sweep --dropout 0,0.1 --out d"

    def __str__(self) -> str:
        return (f"process {self.pid} on {self.host}, started {self.started} "
                f"('{self.command}')")

    def gone(self) -> bool:
        """Whether the holder's process no longer exists: only known on its own machine."""
        return self.host == socket.gethostname() and not process_exists(self.pid)

    def text(self) -> str:
        """The lock file's content: one ``name: value`` line per field."""
        return "".join(f"{name}: {value}\n" for name, value in zip(_FIELDS, self))

    @classmethod
    def parse(cls, text: str | None) -> Holder | None:
        """The holder ``text`` (a lock file's content) names, or None if it names none."""
        fields = dict(line.partition(": ")[::2] for line in (text or "").splitlines())
        try:
            return cls(int(fields["pid"]), fields["host"], fields["started"],
                       fields["command"])
        except (KeyError, ValueError):
            return None


class LockHeld(Exception):
    """Another process holds the lock: ``holder`` (None when the file names nobody)."""

    def __init__(self, path: str, holder: Holder | None):
        super().__init__(f"{path} is held by {holder or 'a process it does not name'}")
        self.path, self.holder = path, holder


class FolderLock:
    """The lock of ``folder`` (which exists) for this process, running ``command``."""

    def __init__(self, folder: str, command: str):
        self.path = os.path.join(folder, LOCK)
        self._mine = Holder(os.getpid(), socket.gethostname(),
                            time.strftime("%Y-%m-%d %H:%M:%S %z"), command).text()

    def acquire(self) -> Holder | None:
        """Take the lock; returns the holder of a stale lock it took over, else None.

        Raises:
          LockHeld: another process holds it (or the file names no holder).
          OSError: the folder cannot be written.
        """
        taken_over = None
        for _ in range(3):  # a lock removed or taken over between two steps: look again
            if self._create():
                return taken_over
            text = _read(self.path)
            if text is None:
                continue  # released meanwhile
            holder = Holder.parse(text)
            if holder is None or not holder.gone():
                raise LockHeld(self.path, holder)
            if self._remove_stale(text):
                taken_over = holder
        raise LockHeld(self.path, Holder.parse(_read(self.path)))

    def release(self) -> None:
        """Remove the lock file, if it is still this process's."""
        if _read(self.path) == self._mine:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _create(self) -> bool:
        """Create the lock file holding ``self._mine``; False if it exists."""
        aside = f"{self.path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        with open(aside, "x", encoding="utf-8") as file:
            file.write(self._mine)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(aside, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system: create, then write
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                return False
            with open(fd, "w", encoding="utf-8") as file:
                file.write(self._mine)
            return True
        finally:
            os.unlink(aside)

    def _remove_stale(self, text: str) -> bool:
        """Remove the lock file if it still holds ``text``: moved aside first, so that a
        lock another process took meanwhile is seen, and put back."""
        aside = f"{self.path}.{os.getpid()}.{secrets.token_hex(4)}.stale"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        try:
            if _read(aside) == text:
                return True
            with contextlib.suppress(OSError):  # a third process's lock: leave it
                os.link(aside, self.path)
            return False
        finally:
            os.unlink(aside)


def _read(path: str) -> str | None:
    """The text of ``path``, or None if it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except FileNotFoundError:
        return None
