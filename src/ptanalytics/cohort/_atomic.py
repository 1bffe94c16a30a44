"""Safe writes: a lock per destination, atomic replacement, recovery of interrupted runs.

Every output ptanalytics writes (a cohort folder, a report file) goes through this module:

* **A lock** ``.<name>.ptanalytics-lock`` beside the destination, created with ``O_EXCL`` and
  holding ``<pid> <host>``, refuses a second writer to the same destination. A lock whose process
  is no longer running (same host) is stale: it is removed, with a message on stderr.
* **A folder** is written to the hidden sibling ``.<name>.ptanalytics-new-<token>``. When it is
  complete the old folder (if any) is renamed to ``.<name>.ptanalytics-old-<token>``, the new one
  is renamed to ``<name>``, then the old one is deleted. A ``kill -9`` at any step leaves at
  ``<name>`` the old output, the new output, or nothing while the old output waits, complete, in
  its ``-old-`` sibling.
* **Recovery**: before writing, under the lock, the leftovers of an interrupted run are put right
  and reported on stderr: an ``-old-`` folder with no ``<name>`` beside it is renamed back (the
  run was killed between its two renames), every other ``-new-``/``-old-`` leftover is deleted.
* **A file** is written to ``.<name>.ptanalytics-new-<token>`` beside it and renamed over
  ``<name>`` (``os.replace``, atomic on POSIX and Windows).

What may be replaced is decided by the caller (``owned``): this module never deletes a
destination the caller did not recognise as its own output.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ptanalytics.exceptions import CohortFormatError

__all__: list[str] = []

#: A lock file younger than this without a pid in it is taken as being created right now.
_FRESH_LOCK_S = 10.0

#: ``owned(path)``: ``None`` when ``path`` is an output this package may replace, else the reason.
Owned = Callable[[Path], str | None]
#: The files being read, which a destination must not hold.
Inputs = Iterable[str | os.PathLike]


def notify(message: str) -> None:
    """Tell the user what recovery did (stderr; the library's only such messages)."""
    print(f"ptanalytics: {message}", file=sys.stderr, flush=True)


def _sibling(dest: Path, kind: str, token: str = "") -> Path:
    return dest.parent / f".{dest.name}.ptanalytics-{kind}{token}"


def _leftovers(dest: Path, kind: str) -> list[Path]:
    pattern = f".{glob.escape(dest.name)}.ptanalytics-{kind}-*"
    return sorted(dest.parent.glob(pattern), key=lambda p: p.name)


def absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute and normalised (``..`` removed) without following symlinks."""
    dest = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if dest.name in ("", ".", ".."):
        raise CohortFormatError(
            f"{path}: cannot be written to (it is the root folder). Fix: name a folder below it."
        )
    return dest


# ------------------------------------------------------------------------------------- lock
def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine's process: cannot tell, so respect its lock
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(lock: Path) -> tuple[int, str] | None:
    try:
        pid, host = lock.read_text(encoding="utf-8").split()
        return int(pid), host
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def destination_lock(dest: Path) -> Iterator[None]:
    """Hold ``.<name>.ptanalytics-lock`` beside ``dest`` for the duration of the block."""
    lock = _sibling(dest, "lock")
    busy = (
        f"{dest}: another ptanalytics run is writing to it (lock {lock.name}{{who}}). "
        f"Fix: wait for that run to finish; if none is running, delete {lock}."
    )
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if holder is None:
                try:
                    age = time.time() - lock.stat().st_mtime
                except FileNotFoundError:
                    continue  # released meanwhile: try again
                if age < _FRESH_LOCK_S:
                    raise CohortFormatError(busy.format(who="")) from None
                notify(f"removed the unreadable stale lock {lock} ({age:.0f} s old)")
            elif _alive(*holder):
                raise CohortFormatError(busy.format(who=f", pid {holder[0]}")) from None
            else:
                notify(
                    f"removed the stale lock {lock}: its run (pid {holder[0]}) is no longer running"
                )
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        try:
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        finally:
            os.close(fd)
        break
    else:
        raise CohortFormatError(busy.format(who=""))
    try:
        yield
    finally:
        if _holder(lock) == (os.getpid(), socket.gethostname()):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()


# ------------------------------------------------------------------------------------- recovery
def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def recover(dest: Path) -> list[str]:
    """Put right what an interrupted write to ``dest`` left behind (call under the lock).

    Returns the messages, also printed on stderr.
    """
    done = []
    olds = _leftovers(dest, "old")
    if olds and not os.path.lexists(dest):
        # Killed between renaming the old output aside and renaming the new one in.
        keep = max(olds, key=lambda p: p.stat().st_mtime)
        os.rename(keep, dest)
        olds.remove(keep)
        done.append(f"restored {dest} from {keep.name}, left by an interrupted ptanalytics run")
    for path in olds + _leftovers(dest, "new"):
        try:
            _remove(path)
        except OSError as exc:
            done.append(f"could not remove the leftover {path} ({exc.strerror}); remove it by hand")
            continue
        done.append(f"removed {path.name}, left by an interrupted ptanalytics run")
    for message in done:
        notify(message)
    return done


def interrupted_hint(dest: Path) -> str:
    """A sentence for 'not found' errors when an interrupted write left ``dest`` aside."""
    olds = _leftovers(absolute(dest), "old")
    if not olds:
        return ""
    return (
        f" An interrupted ptanalytics write left the previous output in {olds[-1]}; the next "
        f"write to {dest} restores it (or rename it back by hand)."
    )


# ------------------------------------------------------------------------------------- folders
def _refuse_symlink(dest: Path) -> None:
    if dest.is_symlink():
        raise CohortFormatError(
            f"{dest}: is a symbolic link; ptanalytics does not write through links (it would "
            f"replace the link, not the folder it points to). Fix: give the real path "
            f"({os.path.realpath(dest)})."
        )


def _refuse_inputs(dest: Path, inputs: Iterable[str | os.PathLike]) -> None:
    real = Path(os.path.realpath(dest))
    for source in inputs:
        src = Path(os.path.realpath(source))
        if src == real or src.is_relative_to(real):
            raise CohortFormatError(
                f"{dest}: holds the input {source}; writing there would replace the data being "
                f"read. Nothing was changed. Fix: choose an output folder apart from the inputs."
            )


def check_folder(
    path: str | os.PathLike, *, overwrite: bool, owned: Owned, inputs: Inputs = ()
) -> None:
    """Refuse, before anything is written, a destination :func:`replace_folder` would refuse."""
    dest = absolute(path)
    _refuse_symlink(dest)
    _refuse_inputs(dest, inputs)
    if dest.exists() and not dest.is_dir():
        raise CohortFormatError(
            f"{path}: exists and is not an empty folder (it is a file). Fix: choose a folder."
        )
    if not dest.exists() or not any(dest.iterdir()):
        return
    if not overwrite:
        raise CohortFormatError(
            f"{path}: folder exists and is not empty. Fix: choose another folder or pass "
            f"overwrite=True (--overwrite on the command line)."
        )
    reason = owned(dest)
    if reason is not None:
        raise CohortFormatError(
            f"{path}: --overwrite replaces only a folder written by ptanalytics (marked in "
            f"its cohort.json) or an empty one, and this folder {reason}. Nothing was "
            f"changed. Fix: choose another --out folder, or move its contents away first."
        )


def precheck_folder(
    path: str | os.PathLike, *, overwrite: bool, owned: Owned, inputs: Inputs = ()
) -> None:
    """Before a long computation: recover leftovers (under the lock) and refuse what
    :func:`replace_folder` would refuse. Nothing new is written."""
    dest = absolute(path)
    _refuse_symlink(dest)
    if not dest.parent.is_dir():  # nothing there yet: nothing to recover, nothing to lock
        check_folder(path, overwrite=overwrite, owned=owned, inputs=inputs)
        return
    with destination_lock(dest):
        recover(dest)
        check_folder(path, overwrite=overwrite, owned=owned, inputs=inputs)


@contextlib.contextmanager
def replace_folder(
    path: str | os.PathLike, *, overwrite: bool, owned: Owned, inputs: Inputs = ()
) -> Iterator[Path]:
    """Yield a new hidden sibling folder that atomically replaces ``path`` when the block ends.

    ``owned(folder)`` returns ``None`` when ``folder`` is an output this package may replace, or
    the reason it is not. An empty folder may always be replaced. Nothing is written or deleted
    before every check passes; on an error in the block the new folder is removed and ``path`` is
    untouched.
    """
    dest = absolute(path)
    check_folder(path, overwrite=overwrite, owned=owned, inputs=inputs)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with destination_lock(dest):
        recover(dest)
        check_folder(path, overwrite=overwrite, owned=owned, inputs=inputs)
        token = secrets.token_hex(4)
        new, old = _sibling(dest, "new-", token), _sibling(dest, "old-", token)
        new.mkdir()
        try:
            yield new
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        _swap(new, old, dest)


def _swap(new: Path, old: Path, dest: Path) -> None:
    """Old aside, new in, old deleted; every failure leaves a complete output at ``dest``."""
    had_old = dest.exists()
    if had_old:
        try:
            os.rename(dest, old)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
    try:
        os.rename(new, dest)
    except BaseException:
        if had_old:
            os.rename(old, dest)
        shutil.rmtree(new, ignore_errors=True)
        raise
    if had_old:
        try:
            shutil.rmtree(old)
        except OSError as exc:
            notify(
                f"wrote {dest}, but could not delete the previous output {old} "
                f"({exc.strerror}); the next write to {dest.name} removes it, or delete it by hand"
            )


# ------------------------------------------------------------------------------------- files
def check_file(path: str | os.PathLike, *, owned: Owned, what: str = "file") -> Path:
    """Refuse, before anything is written, a destination :func:`replace_file` would refuse.

    Refused: ``path`` is a symbolic link or a folder, or an existing non-empty file that
    ``owned`` does not recognise (the message says ptanalytics replaces only a ``what`` it
    wrote). Returns ``path`` made absolute.
    """
    dest = absolute(path)
    _refuse_symlink(dest)
    if dest.is_dir():
        raise CohortFormatError(
            f"{path}: is a folder; the report is one HTML file. Fix: give a file name, e.g. "
            f"{Path(path) / 'report.html'}."
        )
    if dest.is_file() and dest.stat().st_size:
        reason = owned(dest)
        if reason is not None:
            raise CohortFormatError(
                f"{path}: exists and {reason}; ptanalytics replaces only a {what} it wrote. "
                f"Nothing was changed. Fix: choose another --out file, or remove this one."
            )
    return dest


def replace_file(path: str | os.PathLike, data: bytes, *, owned: Owned) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling file and an atomic rename.

    An existing ``path`` is replaced only when it is empty or ``owned(path)`` returns ``None``;
    otherwise (or when ``path`` is a folder or a symlink) nothing is written
    (:func:`check_file`, before and under the lock).
    """
    dest = check_file(path, owned=owned)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with destination_lock(dest):
        recover(dest)
        check_file(path, owned=owned)
        tmp = _sibling(dest, "new-", secrets.token_hex(4))
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
    return dest
