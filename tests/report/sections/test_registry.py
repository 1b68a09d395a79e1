"""The report sections' registry: each section registers itself where it is defined, a
new module is picked up with no list to edit, an unknown name is refused with the
registered ones; on a committed result."""

from __future__ import annotations

from paths import REPO

import sys
import textwrap
from pathlib import Path

import pytest

from benchkit.core.errors import BenchkitError
from benchkit.report import sections
from benchkit.report.context import configurations, load

# a committed run with sections beyond the core page (engines, context depth)
RESULT = REPO / "results" / "20261201T193554Z-depth-smollm2-62e91f.json"
TEMPLATES = REPO / "benchkit" / "templates" / "sections"
PROBE = "benchkit.report.sections.zz_probe"


@pytest.fixture()
def registry(monkeypatch: pytest.MonkeyPatch) -> dict:
    """A copy of the registry for one test, so what a test registers does not stay."""
    sections.discover()
    copy = dict(sections.REGISTRY)
    monkeypatch.setattr(sections, "REGISTRY", copy)
    return copy


@pytest.fixture(scope="module")
def measured():
    df, docs = load([RESULT])
    return df, docs, configurations(df)


def test_every_section_module_registers_with_both_templates() -> None:
    modules = sorted(p.stem for p in Path(sections.__file__).parent.glob("*.py")
                     if p.stem != "__init__")
    registered = sections.names()
    assert sorted(sections.get(n).context.__module__.rsplit(".", 1)[1]
                  for n in registered) == modules
    for name in registered:
        assert (TEMPLATES / f"{name}.md.j2").is_file(), name
        assert (TEMPLATES / f"{name}.html.j2").is_file(), name


def test_names_follow_the_stated_order() -> None:
    orders = [sections.get(n).order for n in sections.names()]
    assert orders == sorted(orders)
    assert len(set(orders)) == len(orders)


def test_unknown_section_lists_the_registered_ones(measured) -> None:
    with pytest.raises(BenchkitError) as err:
        sections.get("nope")
    assert "nope" in err.value.message
    for name in sections.names():
        assert name in err.value.message
    with pytest.raises(BenchkitError, match="unknown report section 'nope'"):
        sections.build(*measured, only=["engines", "nope"])


def test_a_section_in_a_new_module_is_picked_up(registry: dict, measured, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zz_probe.py").write_text(textwrap.dedent('''
        from benchkit.report.sections import section

        @section("probe", order=15)
        def context(df, docs, configs):
            return {"configs": [c.label for c in configs]}
        '''), encoding="utf-8")
    monkeypatch.setattr(sections, "__path__", [*sections.__path__, str(tmp_path)])
    try:
        names = sections.names()
        built, _ = sections.build(*measured)
    finally:
        sys.modules.pop(PROBE, None)
    before = [n for n in names if n != "probe" and registry[n].order < 15]
    assert names[:len(before) + 1] == [*before, "probe"]
    built_names = [s["name"] for s in built]
    assert "probe" in built_names and len(built_names) >= 3
    assert built_names == sorted(built_names, key=lambda n: registry[n].order)
    probe = built[built_names.index("probe")]
    assert probe["data"] == {"configs": [c.label for c in measured[2]]}


def test_only_builds_the_sections_named(measured) -> None:
    everything, _ = sections.build(*measured)
    assert len(everything) >= 2, "the committed result supports two sections or more"
    last = everything[-1]["name"]
    only, _ = sections.build(*measured, only=[last])
    assert [s["name"] for s in only] == [last]


def test_a_name_is_one_section(registry: dict) -> None:
    taken = sections.names()[0]

    def context(df, docs, configs):
        return None

    with pytest.raises(BenchkitError, match=f"report section '{taken}' is registered twice"):
        sections.section(taken, order=1)(context)
