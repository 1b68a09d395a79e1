"""benchkit: benchmark local LLM inference on llama.cpp, and project the results.

The one path through the library: suite -> runner -> engine -> result file ->
DataFrame (`load_results`) -> projection / report.
"""

from __future__ import annotations

from benchkit.core.version import __version__

__all__ = ["__version__", "load_results"]


def load_results(paths):  # noqa: ANN001, ANN201 - re-exported, documented in benchkit.results.frame
    """Load result files into a pandas DataFrame, one row per case and test (see benchkit.results.frame)."""
    from benchkit.results.frame import load_results as _load

    return _load(paths)
