"""A full disk (the catalogue, tests/catalogue_io.py): report, site, submit, import and the
llama-bench formats written onto a real tmpfs that has just filled up, over what an
earlier run wrote there. Each is one error line naming the file and the reason, exit 1,
no traceback; every file written before is byte for byte as it was, and no temporary
file or folder is left behind.

The tmpfs needs root (mount); where it cannot be mounted the tests are skipped, saying
so. `write_files` itself is also tried on a read-only folder, which needs no mount.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from catalogue_io import DISK, LLAMA_BENCH
from catalogue_support import cli, real_result  # noqa: F401 (fixtures)
from community_support import REPO, SITE_PRESETS

ENGINES_RESULT = REPO / "results" / "20261201T182814Z-engines-smollm2-bcdbed.json"
COMMUNITY = REPO / "results" / "community"


@pytest.fixture()
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs (a site with its projection explorer is tens of MB), unmounted
    afterwards."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def fill(mnt: Path) -> None:
    """Fill the disk to its last byte (unbuffered writes, smaller and smaller)."""
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` (the filler aside): path -> sha256 ('' for a
    folder)."""
    return {str(p.relative_to(folder)): "" if p.is_dir() else
            hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.name != "filler"}


@pytest.mark.parametrize("case", DISK, ids=[c[0] for c in DISK])
def test_full_disk(case: tuple, disk: Path, real_result: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
    name, _, expect = case
    if name == "disk-report":
        args = ["report", str(ENGINES_RESULT), "-o", str(disk / "rep")]
    elif name == "disk-format":
        args = ["report", str(ENGINES_RESULT), "--format", "llama-bench-json",
                "-o", str(disk / "rep")]
    elif name == "disk-site":
        args = ["site", str(COMMUNITY), "-o", str(disk / "site"), *SITE_PRESETS]
    elif name == "disk-submit":
        args = ["submit", str(real_result), "--root", str(disk / "community")]
    else:
        args = ["import", str(LLAMA_BENCH / "smollm2-cpu.json"),
                str(LLAMA_BENCH / "smollm2-cpu.csv"), "-o", str(disk / "imported")]
    if name in ("disk-report", "disk-format", "disk-site"):
        first = cli(capsys, *args)                    # what an earlier run wrote
        assert first.returncode == 0, first.stderr
    before = snapshot(disk)
    fill(disk)
    proc = cli(capsys, *args)
    line = refused_with(proc, expect)
    assert str(disk) in line
    assert snapshot(disk) == before, "nothing written before changed, no temporary file left"


def refused_with(proc: subprocess.CompletedProcess[str], expect: str) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and expect in lines[0], proc.stderr
    return lines[0]


def test_write_files_is_all_or_nothing_on_a_read_only_folder(tmp_path: Path) -> None:
    """Two files, the second in a folder that cannot be written: neither is replaced."""
    from benchkit.core.atomicio import write_files
    from benchkit.core.errors import BenchkitError

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    ok, locked = tmp_path / "ok", tmp_path / "locked"
    ok.mkdir()
    locked.mkdir()
    (ok / "a.txt").write_text("old a")
    (locked / "b.txt").write_text("old b")
    locked.chmod(0o500)
    try:
        with pytest.raises(BenchkitError) as exc:
            write_files({ok / "a.txt": "new a", locked / "b.txt": "new b"}, "report")
    finally:
        locked.chmod(0o700)
    assert "b.txt" in str(exc.value) and "cannot write the report" in str(exc.value)
    assert (ok / "a.txt").read_text() == "old a" and (locked / "b.txt").read_text() == "old b"
    assert sorted(p.name for p in ok.iterdir()) == ["a.txt"]


def test_replace_folder_swaps_a_complete_folder(tmp_path: Path) -> None:
    from benchkit.core.atomicio import replace_folder

    out = tmp_path / "site"
    replace_folder(out, {"index.html": b"one", "a/b.html": b"two"})
    replace_folder(out, {"index.html": b"three"})
    assert snapshot(out) == {"index.html": hashlib.sha256(b"three").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]
