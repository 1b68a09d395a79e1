"""Hostile community files (the catalogue, tests/catalogue_support.py): links, FIFOs,
duplicates, edited copies and impossible figures in results/community/, refused by
`validate` in one line or skipped by `site`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from catalogue_support import COMMUNITY, HANG_TIMEOUT, cli, needs_posix
from catalogue_support import real_result  # noqa: F401 (fixtures)
from community_support import REPO, as_nvidia, case_of, load, scale_speed, write
from conftest import run_benchkit


# --- the community data set --------------------------------------------------------------


@pytest.fixture()
def community(real_result: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(the community root, the real result filed in it by submit)."""
    root = tmp_path / "results" / "community"
    proc = run_benchkit("submit", str(real_result), "--root", str(root), cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return root, next(root.rglob("*.json"))


def _filed(root: Path, doc: dict) -> Path:
    from benchkit.community.identity import community_relpath

    return write(doc, root / community_relpath(doc))


@pytest.mark.parametrize("case", COMMUNITY, ids=[c[0] for c in COMMUNITY])
def test_community(case: tuple, community: tuple[Path, Path], real_result: Path,
                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, _, expect = case
    root, filed = community
    doc = load(real_result)
    here = filed.parent
    if name == "link-elsewhere":
        target = here / "link.json"
        target.symlink_to(real_result)
    elif name == "link-dev-zero":
        target = here / "zero.json"
        target.symlink_to("/dev/zero")
    elif name == "fifo":
        needs_posix("fifo")
        target = here / "fifo.json"
        os.mkfifo(target)
    elif name == "linked-folder":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        write(load(filed), elsewhere / filed.name)
        (here.parent / "linked").symlink_to(elsewhere, target_is_directory=True)
        target = here.parent / "linked" / filed.name
    elif name in ("cpu-1e6", "unknown-gpu-1e6", "known-gpu-40000"):
        if name == "cpu-1e6":
            fast = copy.deepcopy(doc)
        elif name == "unknown-gpu-1e6":
            fast = as_nvidia(doc, chip_id=None, name="NVIDIA Hyper X9000", speedup=1.0)
        else:
            fast = as_nvidia(doc, speedup=1.0)
        tg = case_of(fast, "tg")
        scale_speed(tg, (4e4 if name == "known-gpu-40000" else 1e6) / tg["summary"]["tps_median"])
        target = write(fast, tmp_path / f"{name}.json")
    elif name in ("near-duplicate", "exact-duplicate", "reversed-duplicate"):
        copy_ = load(filed)
        copy_["run_id"] = copy_["run_id"][:-6] + "ffffff"
        if name == "reversed-duplicate":       # the same set of measurements, reordered
            for c in copy_["cases"]:
                c["iterations"].reverse()
            copy_["cases"].reverse()
            for i, c in enumerate(copy_["cases"]):
                c["index"] = i
        if name == "near-duplicate":
            it = case_of(copy_, "tg")["iterations"][0]
            it["seconds"] *= 1 + 1e-9
            it["tps"] = it["tokens"] / it["seconds"]
            from community_support import resummarize

            resummarize(case_of(copy_, "tg"))
        target = _filed(root, copy_)
    elif name == "long-name":
        for c in doc["cases"]:
            c["model"]["name"] = "m" * 300 + ".gguf"
        source = write(doc, tmp_path / "long-name.json")
        proc = run_benchkit("submit", str(source), "--root", str(tmp_path / "new" / "community"),
                            cwd=REPO)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert expect in proc.stdout
        written = Path(re.search(r"written: (\S+)", proc.stdout)[1])
        assert written.is_file() and all(len(p) <= 100 for p in written.parts)
        return
    else:                                   # site-nan
        bad = load(filed)
        case_of(bad, "tg")["iterations"][0]["tps"] = float("nan")
        (here / "bad-nan.json").write_text(json.dumps(bad), encoding="utf-8")
        proc = cli(capsys, "site", str(root), "-o", str(tmp_path / "site"))
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped:")]
        assert len(skipped) == 1 and "bad-nan.json" in skipped[0] and "NaN" in skipped[0]
        assert "from 1 accepted result(s)" in proc.stdout
        return
    proc = run_benchkit("validate", str(target), cwd=REPO, timeout=HANG_TIMEOUT)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1 and expect in errors[0] and target.name in errors[0], proc.stderr
