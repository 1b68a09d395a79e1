"""Where things are, for tests at any depth of tests/: the repository, its test data and docs."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
DOCS = REPO / "docs"
