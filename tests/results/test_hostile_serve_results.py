"""Hostile serve results (the catalogue, tests/catalogue_io.py): text, lists and absurd
figures where a serve level's summary holds numbers, in the real serve result committed
under results/, through every reader; and every value of a serve level replaced in
turn (the fuzz below). Each reader accepts the file or refuses it in one line naming the
field; none raises anything else.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from catalogue_io import SERVE, SERVE_READERS, SERVE_RESULT, serve_case
from catalogue_support import cli, refused

# a serve run of conversations (sessions, the server's cache, its own counters)
REALISM = max(SERVE_RESULT.parent.glob("*-serve-realism-smollm2-*.json"))   # the newest committed one
HOSTILE: tuple[Any, ...] = ("x", [1], {"a": None}, -1, None, 1e300, True, 2**63, "\x1b[2J")


def _args(reader: str, bad: Path, tmp_path: Path) -> list[str]:
    return {"validate": ["validate", str(bad)],
            "compare": ["compare", str(SERVE_RESULT), str(bad)],
            "report": ["report", str(bad), "-o", str(tmp_path / "report" / "r")],
            "project": ["project", "--from", str(bad)]}[reader]


@pytest.mark.parametrize("reader", SERVE_READERS)
@pytest.mark.parametrize("case", SERVE, ids=[c[0] for c in SERVE])
def test_serve_summary(case: tuple, reader: str, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    _, _, key, value, expect, field = case
    doc = json.loads(SERVE_RESULT.read_text(encoding="utf-8"))
    at = serve_case()
    doc["cases"][at]["summary"][key] = value
    bad = tmp_path / "serve.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    refused(cli(capsys, *_args(reader, bad, tmp_path)), bad, expect, f"cases.{at}.{field}")


def _serve_paths(case: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every value of a serve level's summary and workload (nested ones too), and every
    field of its first request."""
    out: list[tuple[Any, ...]] = []

    def walk(value: Any, here: tuple[Any, ...]) -> None:
        items = value.items() if isinstance(value, dict) else (
            enumerate(value) if isinstance(value, list) else ())
        for key, child in items:
            out.append((*here, key))
            walk(child, (*here, key))

    walk(case["summary"], ("summary",))
    walk(case["workload"], ("workload",))
    out += [("iterations", 0, key) for key in case["iterations"][0]]
    return out


@pytest.mark.parametrize("real", [SERVE_RESULT, REALISM], ids=["serve", "realism"])
def test_no_reader_crashes_on_any_serve_value(real: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Each value of a real serve level replaced by a hostile one: report (every third
    file: it is the slow reader), compare both ways and validate accept or refuse it."""
    from benchkit.core.errors import BenchkitError

    doc = json.loads(real.read_text(encoding="utf-8"))
    at = next(i for i, c in enumerate(doc["cases"]) if c["workload"]["kind"] == "serve")
    crashes: list[str] = []
    bad = tmp_path / "serve.json"
    paths = _serve_paths(doc["cases"][at])
    for n, path in enumerate(paths):
        changed = copy.deepcopy(doc)
        target = changed["cases"][at]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = HOSTILE[n % len(HOSTILE)]
        bad.write_text(json.dumps(changed), encoding="utf-8")
        commands = [["compare", str(real), str(bad)], ["compare", str(bad), str(real)],
                    ["validate", str(bad)]]
        if n % 3 == 0:
            commands.append(["report", str(bad), "-o", str(tmp_path / "r" / "r"),
                             "--format", "both"])
        for args in commands:
            try:
                proc = cli(capsys, *args)
            except (BenchkitError, Exception) as exc:  # noqa: BLE001 - what this test finds
                crashes.append(f"{args[0]} on {path} = {target[path[-1]]!r}: "
                               f"{type(exc).__name__}: {exc}")
                continue
            assert "Traceback" not in proc.stderr
    assert len(paths) > 60, "a serve level has dozens of figures"
    assert not crashes, f"{len(crashes)} crash(es):\n" + "\n".join(crashes[:40])
