"""The one safe output writer: every file ortprune writes goes through here.

- A regular file is replaced atomically (a temp file beside it, renamed over it only if the writing
  succeeded), with the mode the umask gives (or the mode the replaced file had).
- A symlink is written through: its target is replaced, the link stays.
- A device, FIFO, socket or directory at the path is refused with an :class:`OutputError`, never replaced.
- An output that is one of the run's inputs is refused (:func:`check_outputs`, before anything runs).
- A full disk, a read-only or missing directory: one :class:`OutputError` naming the path, no temp file left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ortprune.errors import OutputError

_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _os_problem(e: OSError) -> str:
    return e.strerror or str(e)


def output_target(path: str | Path) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or a symlink's final target.

    Raises OutputError for a symlink loop and for anything at the path that is not a regular file."""
    path = Path(path)
    if "\0" in str(path):
        raise OutputError("the path contains a NUL character", repr(str(path)))
    if str(path) in ("", "."):
        raise OutputError("is a directory, not a file name", path)
    target = path
    if path.is_symlink():
        try:
            target = path.resolve(strict=False)
            os.stat(path)  # follows the links: ELOOP for a loop, FileNotFoundError if dangling
        except FileNotFoundError:
            pass  # a dangling link: its target is created
        except (OSError, RuntimeError) as e:
            raise OutputError(f"cannot follow the symlink ({getattr(e, 'strerror', None) or e})", path) from None
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as e:
        raise OutputError(f"cannot write here: {_os_problem(e)}", path) from None
    kind = _KINDS.get(stat.S_IFMT(st.st_mode))
    if kind is not None:
        hint = "; give a file name" if kind == "a directory" else " (omit the option to print to stdout)"
        raise OutputError(f"is {kind}, not a regular file; refusing to replace it{hint}", path)
    return target


def check_output_dir(path: str | Path) -> Path:
    """Before anything runs: ``path`` is a writable directory, or can be created (its nearest existing
    ancestor is a writable directory); OutputError otherwise. Creates nothing: a run that fails later
    leaves no empty directory behind (:func:`output_dir` creates it when there is something to write)."""
    path = Path(path)
    if "\0" in str(path):
        raise OutputError("the path contains a NUL character", repr(str(path)))
    if path.exists() and not path.is_dir():
        raise OutputError("exists and is not a directory", path)
    base = path.absolute()
    while not base.exists() and base != base.parent:
        if base.is_symlink():
            raise OutputError(f"cannot create the directory: {base} is a dangling symlink", path)
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"cannot create the directory: {base} is not a directory", path)
    if not os.access(base, os.W_OK | os.X_OK):
        if base == path.absolute():
            raise OutputError("the directory is not writable", path)
        raise OutputError(f"cannot create the directory: {base} is not writable", path)
    return path


def output_dir(path: str | Path) -> Path:
    """A directory to write into: created if missing; OutputError if something else is there."""
    path = check_output_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the directory: {_os_problem(e)}", path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError("the directory is not writable", path)
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_outputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None] = ()) -> None:
    """Before anything runs: every output can be written (see :func:`output_target`), none is one of
    ``inputs`` (files, or files inside input directories), and no two outputs are the same file."""
    ins = [Path(p) for p in inputs if p is not None]
    seen: list[Path] = []
    for out in outputs:
        if out is None:
            continue
        out = Path(out)
        target = output_target(out)
        for i in ins:
            inside = i.is_dir() and target.exists() and target.resolve().is_relative_to(i.resolve())
            if _same_file(target, i) or inside:
                raise OutputError(f"is also an input ({i}); refusing to overwrite it", out)
        for s in seen:
            if _same_file(target, s) or target.absolute() == s.absolute():
                raise OutputError(f"is given as two outputs ({s} too)", out)
        seen.append(target)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temp file beside ``path`` (or beside a symlink's target); rename over it only if the
    block succeeds. The new file gets the replaced file's mode, else 0666 less the umask."""
    target = output_target(path)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise OutputError(f"cannot write here: {_os_problem(e)}", path) from None
    try:
        try:
            mode_bits = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode_bits = 0o666 & ~_umask()
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode_bits)
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO):
            raise OutputError(f"writing failed: {_os_problem(e)} (nothing was written)", path) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def atomic_copy(src: str | Path, dest: str | Path) -> Path:
    """Copy ``src`` over ``dest`` (bytes and mode) so a reader never sees a half-copied file."""
    with atomic_open(dest, "wb") as f, open(src, "rb") as g:
        shutil.copyfileobj(g, f, 1 << 20)
    shutil.copymode(src, dest)
    return Path(dest)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside ``path`` for a writer that opens files itself (ORT saving a model); renamed
    over ``path`` only if the block succeeds, removed otherwise. The same rules as :func:`atomic_open`."""
    target = output_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        os.unlink(name)  # the writer creates it
    except OSError as e:
        raise OutputError(f"cannot write here: {_os_problem(e)}", path) from None
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.is_file():
            raise OutputError("the writer produced no file", path)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def move_into_place(src: str | Path, dest: str | Path, keep_mode: bool = False) -> Path:
    """Rename a finished file (written beside ``dest`` or in a staging directory on the same file system)
    over ``dest`` (a symlink's target), with the replaced file's mode or 0666 less the umask (``keep_mode``:
    its own mode, as a copy of a library keeps its x bits); copied atomically across file systems."""
    target = output_target(dest)
    try:
        mode_bits = stat.S_IMODE(os.stat(src if keep_mode else target).st_mode)
    except OSError:
        mode_bits = 0o666 & ~_umask()
    try:
        os.chmod(src, mode_bits)
        os.replace(src, target)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise OutputError(f"cannot write here: {_os_problem(e)}", dest) from None
        atomic_copy(src, dest)
        os.chmod(target, mode_bits)
    return Path(dest)


@contextlib.contextmanager
def staged_outputs(out: str | Path) -> Iterator[Path]:
    """For a run whose outputs in directory ``out`` must appear together or not at all: a hidden staging
    directory in ``out`` or, while ``out`` does not exist, in its nearest existing ancestor (the same file
    system, so the files are renamed from it, see :func:`commit_staged`); removed with whatever is left in
    it, so a failed or interrupted run leaves nothing."""
    out = check_output_dir(out)
    base = out.absolute()
    while not base.exists() and base != base.parent:
        base = base.parent
    try:
        stage = Path(tempfile.mkdtemp(prefix=".ortprune-", suffix=".tmp", dir=base))
    except OSError as e:
        raise OutputError(f"cannot write here: {_os_problem(e)}", out) from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def commit_staged(stage: Path, out: str | Path, names: Iterable[str], keep_mode: bool = False) -> None:
    """Create ``out`` and rename the staged files ``names`` into it, with Ctrl-C held until the last one."""
    output_dir(out)
    with uninterrupted():
        for name in names:
            move_into_place(stage / name, Path(out) / name, keep_mode)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """A short block that Ctrl-C does not cut in two (renames that must land together): a SIGINT during
    it is raised as KeyboardInterrupt when the block ends. Outside the main thread (where Python cannot
    set signal handlers) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def walk(
    top: str | Path, onerror: Callable[[OSError], None] | None = None
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top)``: top-down, the same order, symlinked directories listed but not entered, the caller
    may prune ``dirnames`` in place, errors passed to ``onerror`` (default: ignored) -- with a stack instead
    of recursion: Python 3.11's ``os.walk`` and ``Path.rglob`` recurse, and a tree deeper than the
    recursion limit raised RecursionError."""
    stack = [os.fspath(top)]
    while stack:
        current = stack.pop()
        try:
            entries = os.scandir(current)
        except OSError as e:
            if onerror is not None:
                onerror(e)
            continue
        dirs: list[str] = []
        files: list[str] = []
        with entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                (dirs if is_dir else files).append(entry.name)
        yield current, dirs, files
        stack += [p for d in reversed(dirs) if not os.path.islink(p := os.path.join(current, d))]


def input_problem(path: str | Path, want_dir: bool = False) -> str | None:
    """Why ``path`` cannot be read as an input file (or directory), in words; None when it can.

    Never opens the path: a FIFO would block, a device would be read forever."""
    path = Path(path)
    if "\0" in str(path):
        return "the path contains a NUL character"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "a symlink whose target does not exist" if path.is_symlink() else "no such file or directory"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symlink loop"
        return e.strerror or str(e)
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFDIR:
        return None if want_dir else "is a directory, not a file"
    if fmt != stat.S_IFREG:
        return f"is {_KINDS.get(fmt, 'not a regular file')}, not a regular file"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


#: How a float JSON cannot carry (RFC 8259 has no NaN or Infinity) is written: as these strings, the
#: spellings Python's and JavaScript's own parsers use, so no reader is handed a bare ``NaN`` it rejects.
NON_FINITE = ("NaN", "Infinity", "-Infinity")


def json_text(data: object, indent: int | None = 2) -> str:
    """``data`` as strict JSON, ending in a newline: a non-finite float becomes a :data:`NON_FINITE` string."""
    import json
    import math

    def strict(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return NON_FINITE[0 if math.isnan(value) else 1 if value > 0 else 2]
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [strict(v) for v in value]
        return value

    return json.dumps(strict(data), indent=indent, allow_nan=False) + "\n"
