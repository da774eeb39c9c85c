"""The ``purenn`` command's persistent compilation cache: JAX's cache, kept in
``$XDG_CACHE_HOME/purenn``, whose entries are checked on every read.

JAX stores a compiled program as one file per cache key and trusts what it reads: a
truncated or zero-filled file (a full disk, a crash) gives a warning on every run and is
never rewritten, and a file holding another key's program (two entries swapped) is loaded
and run, failing with an error or computing the wrong program. In the command's own folder
purenn stores the entries itself (``CheckedCache``): each file starts with a SHA-256 of its
key and its program, so an entry that is damaged, or that is not its key's, is removed and
its program compiled again and rewritten, before anything runs. Repairs are one line on
stderr per process (none with ``--quiet``), in place of JAX's warnings.

A folder chosen with ``JAX_COMPILATION_CACHE_DIR`` is JAX's, used with JAX's own settings
and storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import sys
import warnings
from collections.abc import Callable

import jax

from purenn import files

__all__ = [
    "ENTRY_SUFFIX",
    "NO_CACHE_ENV",
    "CheckedCache",
    "cache_disabled",
    "cache_folder",
    "enable_compilation_cache",
    "use_compilation_cache",
]

NO_CACHE_ENV = "PURENN_NO_CACHE"
ENTRY_SUFFIX = "-checked"  # not JAX's "-cache": JAX's own cache never reads these files
_DIGEST_BYTES = hashlib.sha256().digest_size

# JAX's warnings for an entry it could not read or write; CheckedCache says it instead.
_JAX_CACHE_WARNINGS = r"Error (reading|writing) persistent compilation cache entry"


def cache_folder() -> str:
    """Where the command keeps compiled programs: ``$XDG_CACHE_HOME/purenn``, or
    ``~/.cache/purenn`` when XDG_CACHE_HOME is unset or not an absolute path (as the XDG
    base directory specification asks)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "purenn")


def cache_disabled(args) -> bool:
    """``--no-cache``, or PURENN_NO_CACHE set to anything but "" or "0"."""
    return args.no_cache or os.environ.get(NO_CACHE_ENV, "") not in ("", "0")


def _digest(key: str, program: bytes) -> bytes:
    """What an entry starts with: the SHA-256 of its key and its program, so that a program
    stored under another key's name fails the check as a damaged one does."""
    return hashlib.sha256(key.encode() + b"\0" + program).digest()


class CheckedCache:
    """JAX's persistent-cache storage (its ``get``/``put`` interface) for one folder, with
    every entry checked on read.

    An entry is the file ``<key>-checked``: 32 bytes of SHA-256 of the key and the program,
    then the program as JAX gives it (compressed, with its compile time). ``get`` returns
    the program only when the digest matches; otherwise it removes the file and returns
    None, so JAX compiles the program and ``put`` writes it again. ``put`` writes
    atomically (``files.atomic_write``), so a reader never sees half an entry. A ``put`` of
    a key that ``get`` returned means JAX could not load that entry: it is rewritten.

    ``warn(message)`` is called once, at the first repair or failure to write; a folder
    that cannot be written is not tried again in the process.
    """

    def __init__(self, folder: str, warn: Callable[[str], None]):
        self._path = pathlib.Path(folder)  # JAX's cache interface names its folder so
        self._warn = warn
        self._warned = False
        self._writable = True
        self._served: set[str] = set()

    def _entry(self, key: str) -> pathlib.Path:
        if not key:
            raise ValueError("key cannot be empty")
        return self._path / f"{key}{ENTRY_SUFFIX}"

    def _report(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            self._warn(message)

    def _repaired(self, key: str, what: str) -> None:
        program = key.rsplit("-", 1)[0]  # JAX's keys are "<program name>-<hash>"
        self._report(f"the compilation cache in {str(self._path)!r} held {what} "
                     f"({program}); it is compiled again and rewritten")

    def get(self, key: str) -> bytes | None:
        """The program stored under ``key``, or None (not there, or removed as damaged)."""
        path = self._entry(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:  # a folder or file without read permission: compile
            self._report(f"cannot read the compilation cache entry {str(path)!r} "
                         f"({err.strerror or err}); compiling the program instead")
            return None
        program = data[_DIGEST_BYTES:]
        if data[:_DIGEST_BYTES] != _digest(key, program):
            with contextlib.suppress(OSError):  # put reports a folder it cannot write
                path.unlink()
            self._repaired(key, "a damaged entry")
            return None
        self._served.add(key)
        return program

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing what is there."""
        path = self._entry(key)
        if key in self._served:
            self._served.discard(key)
            self._repaired(key, "an entry JAX could not load")
        if not self._writable:
            return
        try:
            files.atomic_write(str(path), [_digest(key, value), value],
                               what="the compilation cache")
        except OSError as err:
            self._writable = False
            self._report(f"cannot write to the compilation cache in {str(self._path)!r} "
                         f"({err.strerror or err}); programs are compiled but not kept")


_checked_caches: dict[str, CheckedCache] = {}  # folder -> its storage, in this process


def _check_entries(folder: str, warn: Callable[[str], None]) -> bool:
    """Make JAX store the cache in ``folder`` through a ``CheckedCache``; False when this
    JAX has no place to do it (the cache then works as JAX's own)."""
    # JAX has no public way to choose its cache's storage: it builds the storage for its
    # folder by calling compilation_cache.get_file_cache(path), once, before the first
    # compile that uses the cache. Wrapping that function is the narrowest hook there is;
    # the wrapper answers for purenn's folder only.
    from jax._src import compilation_cache as jax_cache

    builder = getattr(jax_cache, "get_file_cache", None)
    if builder is None:
        return False
    if not getattr(builder, "purenn_checked", False):
        def get_file_cache(path):
            checked = _checked_caches.get(os.path.abspath(os.fspath(path)))
            return builder(path) if checked is None else (checked, path)

        get_file_cache.purenn_checked = True
        jax_cache.get_file_cache = get_file_cache
    _checked_caches[os.path.abspath(folder)] = CheckedCache(folder, warn)
    warnings.filterwarnings("ignore", message=_JAX_CACHE_WARNINGS)
    return True


def enable_compilation_cache(warn: Callable[[str], None],
                             report: Callable[[str], None] | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in ``cache_folder()`` for every program,
    however quickly it compiled, so that a later run loads instead of compiling, with its
    entries checked (``CheckedCache``; ``report(message)``, at most once, says what it
    repaired; None: ``warn``). Returns the folder, or None after one ``warn(message)`` when
    the folder cannot be created or written. A folder chosen with JAX_COMPILATION_CACHE_DIR
    wins, with JAX's settings and storage as they are. Changes this process's
    ``jax.config``: call it before anything compiles."""
    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return chosen
    folder = cache_folder()
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)  # the cache holds code JAX will run
        files.probe_writable(folder)
    except OSError as err:
        warn(f"cannot use the compilation cache folder {folder!r} "
             f"({err.strerror or err}); running without it")
        return None
    _check_entries(folder, warn if report is None else report)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size limit
    return folder


def use_compilation_cache(args, prog: str) -> None:
    """``enable_compilation_cache`` unless ``args`` turn it off (``--no-cache``,
    PURENN_NO_CACHE); its warning is ``prog: warning: ...`` on stderr, and so is its
    repairs' one line, except with ``--quiet``."""
    if cache_disabled(args):
        return

    def warn(message):
        print(f"{prog}: warning: {message}", file=sys.stderr)

    enable_compilation_cache(warn, report=(lambda message: None) if args.quiet else warn)
