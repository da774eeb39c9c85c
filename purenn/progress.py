"""The progress bar of long runs: one tqdm bar, on only where a person watches."""

from __future__ import annotations

import sys

__all__ = ["progress_bar"]


def progress_bar(progress: bool | None, total: int, *, initial: int = 0,
                 unit: str = "epoch", minimum: int = 1000):
    """A tqdm bar over ``total`` items (``initial`` already done), or None.

    ``progress``: True or False to force it; None for the default: on when stderr is a
    terminal and ``total`` is at least ``minimum`` (1000 epochs for a run; a sweep passes
    1, so any number of runs). A stripped install without tqdm runs without a bar.
    """
    if progress is None:
        progress = total >= minimum and sys.stderr.isatty()
    if not progress or total <= 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency; a stripped install just runs without a bar
        return None
    return tqdm(total=total, initial=initial, unit=unit, leave=False, dynamic_ncols=True)
