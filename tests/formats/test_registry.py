"""The output formats' registry: `run --format` and `report --format` offer exactly what is
registered, an unknown name is refused with the registered ones (by the library and by
the commands, in one line), a format in a new module is picked up; on a committed result."""

from __future__ import annotations

from paths import REPO

import json
import sys
import textwrap
from pathlib import Path

import click
import pytest

from benchkit import formats
from benchkit.cli.commands.report import report as report_command
from benchkit.cli.commands.run import run as run_command
from benchkit.core.errors import BenchkitError
from benchkit.formats import llama_bench_fields as fields
from benchkit.results.io import read_result
from conftest import run_benchkit

RESULT = REPO / "results" / "20261122T044840Z-smollm2-fa77db.json"
PROBE = "benchkit.formats.zz_probe"


def _choices(command: click.Command) -> list[str]:
    option = next(p for p in command.params if p.name == "fmt")
    return list(option.type.choices)


@pytest.fixture()
def registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A copy of the registry for one test, so what a test registers does not stay."""
    formats.discover()
    copy = dict(formats.REGISTRY)
    monkeypatch.setattr(formats, "REGISTRY", copy)
    return copy


def test_commands_offer_what_is_registered() -> None:
    assert _choices(run_command) == formats.names(formats.RUN)
    assert _choices(report_command) == formats.names(formats.REPORT)
    # benchkit's own formats first, then llama-bench's, in llama-bench's -o order
    for command, own in ((formats.RUN, ["md", "csv", "json", "jsonl"]),
                         (formats.REPORT, ["md", "html", "both"])):
        names = formats.names(command)
        assert names[:len(own)] == own
        assert names[len(own):] == [f"llama-bench-{x}" for x in
                                    ("json", "jsonl", "csv", "sql", "md")]


def test_unknown_format_lists_the_registered_ones() -> None:
    for command in (formats.RUN, formats.REPORT):
        with pytest.raises(BenchkitError) as err:
            formats.get(command, "xml")
        assert err.value.field == "--format"
        assert f"`benchkit {command}`" in err.value.message
        for name in formats.names(command):
            assert name in err.value.message


@pytest.mark.parametrize("args", [("run", "--format", "xml"),
                                  ("report", str(RESULT), "--format", "xml")])
def test_commands_refuse_an_unknown_format_in_one_line(args: tuple[str, ...],
                                                       tmp_path: Path) -> None:
    proc = run_benchkit(*args, "-o" if args[0] == "report" else "--output-dir",
                        str(tmp_path / "out"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if "xml" in line]
    assert len(error) == 1
    for name in formats.names(args[0]):
        assert f"'{name}'" in error[0]
    assert not (tmp_path / "out").exists()


def test_run_text_formats_of_a_committed_result() -> None:
    doc = read_result(RESULT)
    ok = [c for c in doc["cases"] if c["status"] == "ok"]
    rows = json.loads(formats.get(formats.RUN, "json").text([doc]))
    assert [r["test"] for r in rows] == [c["test"] for c in doc["cases"]]
    jsonl = formats.get(formats.RUN, "jsonl").text([doc]).splitlines()
    assert [json.loads(line) for line in jsonl] == rows
    lb = json.loads(formats.get(formats.RUN, "llama-bench-json").text([doc]))
    tokens = [c for c in ok if c["workload"]["kind"] in ("pp", "tg", "pp+tg")]
    assert [fields.test_name(r["n_prompt"], r["n_gen"], r["n_depth"]) for r in lb] == \
        [c["test"] for c in tokens]
    assert all(list(r)[:len(fields.FIELDS)] == list(fields.FIELDS) for r in lb)


def test_report_writes_each_text_format_to_its_extension(tmp_path: Path) -> None:
    doc = read_result(RESULT)
    for name in formats.names(formats.REPORT):
        fmt = formats.get(formats.REPORT, name)
        if fmt.text is None:
            continue
        written = fmt.write([RESULT], tmp_path / "r")
        assert written == [tmp_path / f"r{fmt.extension}"]
        assert written[0].read_text(encoding="utf-8") == fmt.text([doc])


def test_md_is_a_table_for_run_and_a_page_for_report() -> None:
    assert formats.get(formats.RUN, "md").text is not None
    page = formats.get(formats.REPORT, "md")
    assert page.text is None and page.files is not None


def test_a_format_in_a_new_module_is_picked_up(registry: dict, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zz_probe.py").write_text(textwrap.dedent('''
        from benchkit.formats import text_format

        @text_format("tests-only", extension=".txt", order=2)
        def tests_only(docs):
            return "".join(c["test"] + "\\n" for d in docs for c in d["cases"])
        '''), encoding="utf-8")
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(tmp_path)])
    try:
        run_names, report_names = formats.names(formats.RUN), formats.names(formats.REPORT)
    finally:
        sys.modules.pop(PROBE, None)
    assert run_names[-1] == "tests-only" and report_names[-1] == "tests-only"
    doc = read_result(RESULT)
    written = formats.get(formats.REPORT, "tests-only").write([RESULT], tmp_path / "t")
    assert written[0].read_text(encoding="utf-8").split() == [c["test"] for c in doc["cases"]]


def test_a_name_is_one_format_per_command(registry: dict) -> None:
    def other(docs):
        return ""

    with pytest.raises(BenchkitError, match="format 'md' of `benchkit run` is registered twice"):
        formats.text_format("md", commands=(formats.RUN,))(other)
    with pytest.raises(BenchkitError, match="needs an extension"):
        formats.text_format("no-extension")(other)
