"""The catalogue of hostile inputs (tests/catalogue_support.py) is large, its ids are
unique, and docs/reliability.md lists every case (`python tests/catalogue_support.py
--write-docs` rewrites the list).
"""

from __future__ import annotations

from catalogue_support import BEGIN, DOCS, END, catalogue, markdown, write_docs


# --- the catalogue and its documentation ---------------------------------------------------


def test_the_catalogue_has_at_least_100_cases() -> None:
    entries = catalogue()
    assert len(entries) >= 100
    assert len({(e.area, e.id) for e in entries}) == len(entries), "ids must be unique"


def test_the_docs_list_every_case() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    listed = text.split(BEGIN, 1)[1].split(END, 1)[0].strip() + "\n"
    assert listed == markdown(), ("docs/reliability.md is out of date: run "
                                  "`python tests/catalogue_support.py --write-docs`")

