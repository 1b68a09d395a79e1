"""Files written whole or not at all: a full disk leaves what was there before.

A report is a page and its charts, a site is a folder of pages, an import is several
result files. Written in place, a disk that fills up halfway (or a quota, or a read-only
mount) would leave a truncated page beside last week's charts, or a site folder already
emptied and half refilled. Here every file of a set is first written next to its
target under a temporary name; only when all of them are complete are they renamed into
place (a rename within a folder is atomic), and a failure removes the temporary files,
so the previous version of every file stays as it was. Every OSError becomes one
BenchkitError naming the file and the reason ("No space left on device").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from benchkit.core.errors import BenchkitError


def write_files(files: Mapping[Path, bytes | str], what: str = "file") -> list[Path]:
    """Write every file of `files` (text as UTF-8), all or none; returns their paths."""
    staged: list[tuple[str, Path]] = []
    created: list[Path] = []
    try:
        for path, data in files.items():
            created += _make_parents(Path(path), what)
            staged.append((_stage(Path(path), data, what), Path(path)))
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise failed(exc, what, path) from None
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        for folder in reversed(created):          # the folders made for them, if empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return [Path(p) for p in files]


def _make_parents(path: Path, what: str) -> list[Path]:
    """Create the folders above `path` that are missing; the ones created, outermost
    first."""
    missing = []
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    made: list[Path] = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            for done in reversed(made):
                with contextlib.suppress(OSError):
                    done.rmdir()
            raise failed(exc, what, path) from None
        made.append(folder)
    return made


def write_file(path: Path, data: bytes | str, what: str = "file") -> Path:
    """One file, written whole or not at all."""
    return write_files({Path(path): data}, what)[0]


def _stage(path: Path, data: bytes | str, what: str) -> str:
    """`data` in a temporary file beside `path`; its name, or one error line."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())       # the bytes are on disk before the rename claims them
        os.chmod(tmp, 0o666 & ~_umask())     # as open() would have made it
        return tmp
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise failed(exc, what, path) from None


def replace_folder(out: Path, files: Mapping[str, bytes], what: str = "folder") -> None:
    """Make `out` hold exactly `files` (relative path -> bytes): they are written to a new
    folder beside it, which then takes its place, so that a failure leaves the old folder
    (or none) as it was."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".new", dir=out.parent))
    except OSError as exc:
        raise failed(exc, what, out) from None
    old = new.with_name(new.name + ".old")
    try:
        try:
            write_files({new / rel: data for rel, data in files.items()}, what)
        except BenchkitError as exc:        # name the file as it will be, not the draft
            shown = out / Path(exc.file or new).relative_to(new)
            raise BenchkitError(exc.message, file=str(shown), exit_code=exc.exit_code) \
                from None
        os.chmod(new, 0o777 & ~_umask())
        if out.exists():
            os.replace(out, old)
        os.replace(new, out)
    except OSError as exc:
        shutil.rmtree(new, ignore_errors=True)
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise failed(exc, what, out) from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def failed(exc: OSError, what: str, path: Path) -> BenchkitError:
    """An OSError of a write as one error line: what, where and why (exit 1: not the
    input's fault)."""
    return BenchkitError(f"cannot write the {what}: {exc.strerror or exc}; nothing was "
                         "replaced", file=str(path), exit_code=1)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
