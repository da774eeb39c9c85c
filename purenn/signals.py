"""Stop signals: SIGTERM and SIGHUP handled as Ctrl-C is, so that a stopped run is saved.

A cluster scheduler preempts a job with SIGTERM, a closed terminal sends SIGHUP; by
default either ends the process at once, and nothing is saved. Inside ``stop_signals()``
they raise ``StopSignal``, a ``KeyboardInterrupt`` that carries the signal's number, in
the main thread, as SIGINT raises ``KeyboardInterrupt``: code that saves on Ctrl-C
(``except KeyboardInterrupt``) saves on these too::

    with pn.signals.stop_signals():
        try:
            train()
        except KeyboardInterrupt as stop:
            save()
            sys.exit(pn.signals.exit_code(stop))   # 130 for Ctrl-C, 143 for SIGTERM

``pn.fit(..., checkpoint_path=...)`` does this while it runs: it saves the last finished
chunk, prints one line, then ends the process as the signal would have (``StopSignal.
resend``), unless a caller's ``stop_signals()`` is already in place, in which case the
``StopSignal`` goes on to that caller (``purenn train`` exits with 128 + the signal's
number).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["STOP_SIGNALS", "StopSignal", "exit_code", "stop_signals", "what_stopped"]

# The signals that stop a run, where the platform has them (Windows has no SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class StopSignal(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) arrived inside ``stop_signals()``.

    Attributes:
      signum: the signal's number, e.g. ``signal.SIGTERM``.
      name: its name, e.g. ``"SIGTERM"``.
    """

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.name = signal.Signals(self.signum).name
        super().__init__(f"stopped by {self.name}")

    def resend(self) -> None:
        """End the process as the signal does by default: flush stdout and stderr, put the
        default handler back and send the signal again. Returns only where the signal is
        blocked (then the caller raises this exception on)."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed or broken stream: nothing to keep
                stream.flush()
        signal.signal(self.signum, signal.SIG_DFL)
        signal.raise_signal(self.signum)


def what_stopped(interrupt: KeyboardInterrupt) -> str:
    """How a command says it ended: ``interrupted`` (Ctrl-C) or ``stopped by SIGTERM``."""
    return str(interrupt) if isinstance(interrupt, StopSignal) else "interrupted"


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The exit status a command gives after ``interrupt``, as a shell reports a process
    that the signal ended: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129
    for SIGHUP)."""
    if isinstance(interrupt, StopSignal):
        return 128 + interrupt.signum
    return 128 + signal.SIGINT


def _raise_stop(signum, frame):
    del frame  # unused
    raise StopSignal(signum)


@contextlib.contextmanager
def stop_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[frozenset]:
    """While the block runs, each of ``signals`` whose handler is the default one raises
    ``StopSignal`` in the main thread; the previous handlers are put back after.

    A signal that is ignored (``nohup`` ignores SIGHUP) stays ignored, and a handler that
    the program installed itself stays in charge (an outer ``stop_signals()`` included).
    Outside the main thread, where Python cannot install handlers, nothing changes.

    Yields:
      the signals this block handles: a frozenset, empty where it changed nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield frozenset()
        return
    previous = {}
    try:
        for signum in signals:
            if signal.getsignal(signum) == signal.SIG_DFL:
                previous[signum] = signal.signal(signum, _raise_stop)
        yield frozenset(previous)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
