"""Bounded reading of untrusted files: size, kind of file, nesting and YAML aliases.

Suites and result files come from anyone (a pull request, a download, a colleague), so
reading one must cost little whatever it holds. Each limit here turns an input that
would hang, exhaust memory or overflow the stack into one BenchkitError naming the file:

- only regular files are read (a FIFO would block forever, /dev/zero never ends), and
  at most `limit` bytes of them: the size is checked before reading and the read stops
  one byte past the limit, so a file that grows while being read is refused too;
- JSON and YAML nesting is bounded (a document nested 200,000 deep is one line, not a
  RecursionError), and JSON's NaN and Infinity, which Python accepts but JSON does not
  have, are refused naming their field;
- YAML aliases are expanded with a budget: the size of the tree the aliases stand for
  is counted on the node graph, each node once, so a 500-byte "billion laughs" bomb is
  refused in milliseconds instead of being walked for minutes.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from typing import Any

from benchkit.core.errors import BenchkitError

MAX_SUITE_BYTES = 1 << 20        # a suite is a few KB of hand-written YAML
MAX_RESULT_BYTES = 64 << 20      # a result with per-token latencies of long runs is a few MB
MAX_IMPORT_BYTES = 16 << 20      # a llama-bench file: ~1.5 KB a test, 16 MiB is 10,000 tests
MAX_TEXT_BYTES = 64 << 20        # a perplexity text: wikitext-2's test set is 1.3 MB
MAX_PROMPTS_BYTES = 16 << 20     # a serve prompts file: thousands of long prompts
MAX_DEPTH = 64                   # suites nest 4 deep, results 6: 64 is no real document
MAX_YAML_NODES = 20_000          # nodes, aliases expanded; a real suite has hundreds

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO", "a directory"...); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def require_regular_file(path: str | os.PathLike[str], what: str,
                         file: str | None = None) -> os.stat_result:
    """stat() of `path`, refusing anything but an existing regular file (stat never blocks,
    where open() of a FIFO would)."""
    shown = file or str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise BenchkitError(f"{what} does not exist", file=shown) from None
    except OSError as exc:
        raise BenchkitError(f"cannot read {what}: {exc.strerror or exc}", file=shown) from None
    kind = file_kind(st.st_mode)
    if kind:
        raise BenchkitError(f"{what} is {kind}, not a regular file", file=shown)
    return st


def read_bounded_bytes(path: str | os.PathLike[str], limit: int, what: str,
                       file: str | None = None, *, missing: str | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or one error line (`missing`:
    the message for a file that does not exist)."""
    shown = file or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)     # O_NONBLOCK: opening a FIFO returns at once
    except FileNotFoundError:
        raise BenchkitError(missing or f"{what} does not exist", file=shown) from None
    except IsADirectoryError:
        raise BenchkitError(f"{what} is a directory, not a file", file=shown) from None
    except OSError as exc:
        raise BenchkitError(f"cannot read {what}: {exc.strerror or exc}", file=shown) from None
    st = os.fstat(fd)
    kind = file_kind(st.st_mode)
    if kind or st.st_size > limit:
        os.close(fd)
        if kind == "a directory":
            raise BenchkitError(f"{what} is a directory, not a file", file=shown)
        if kind:
            raise BenchkitError(f"{what} is {kind}, not a regular file", file=shown)
        raise BenchkitError(_too_large(what, st.st_size, limit), file=shown)
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise BenchkitError(f"cannot read {what}: {exc.strerror or exc}",
                                file=shown) from None
    if len(data) > limit:
        raise BenchkitError(_too_large(what, len(data), limit, grew=True), file=shown)
    return data


def read_bounded(path: str | os.PathLike[str], limit: int, what: str,
                 file: str | None = None, *, missing: str | None = None) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes, or one error line."""
    data = read_bounded_bytes(path, limit, what, file, missing=missing)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf16 = " but UTF-16: save it as UTF-8" if data[:2] in (b"\xff\xfe", b"\xfe\xff") \
            else f" (byte {exc.start})"
        raise BenchkitError(f"{what} is not UTF-8 text{utf16}", file=file or str(path)) from None


def _too_large(what: str, size: int, limit: int, grew: bool = False) -> str:
    more = "more than " if grew else ""
    return f"{what} is too large: {more}{size:,} bytes (at most {limit:,})"


# --- JSON ---------------------------------------------------------------------------------


def json_loads_bounded(text: str, file: str | None = None, *,
                       max_depth: int = MAX_DEPTH) -> Any:
    """json.loads, with every way a hostile document can fail turned into one line:
    syntax, nesting deeper than `max_depth`, numbers too long to convert, NaN/Infinity."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchkitError(f"not JSON ({exc.msg} at line {exc.lineno})", file=file) from None
    except RecursionError:
        raise BenchkitError(f"not a usable JSON document: nested deeper than {max_depth} "
                            "levels", file=file) from None
    except ValueError:                 # an integer longer than Python converts
        raise BenchkitError("not a usable JSON document: an integer of more than "
                            f"{sys.get_int_max_str_digits()} digits", file=file) from None
    check_tree(doc, file, max_depth=max_depth)
    return doc


def check_tree(doc: Any, file: str | None = None, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting deeper than `max_depth` and non-finite numbers, naming the field.

    Iterative (a recursive walk would itself overflow on the inputs it exists to refuse).
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            name = "NaN" if math.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
            raise BenchkitError(f"{name} is not a finite number (no result holds NaN or "
                                "Infinity, nor a number beyond 1.8e308)", file=file,
                                field=dotted(path))
        if isinstance(value, (dict, list)):
            if len(path) >= max_depth:
                raise BenchkitError(f"nested deeper than {max_depth} levels", file=file,
                                    field=dotted(path[:8]) + ".…")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, (*path, k)) for k, v in items)


def dotted(path: tuple[Any, ...] | list[Any]) -> str:
    """A JSON path as the field names in error lines: cases.0.iterations.2.tps."""
    return ".".join(str(p) for p in path) or "(top level)"


# --- YAML ---------------------------------------------------------------------------------


def yaml_load_bounded(text: str, file: str | None = None, *, max_depth: int = MAX_DEPTH,
                      max_nodes: int = MAX_YAML_NODES) -> tuple[Any, Any]:
    """(node tree, data) of one YAML document, within the budgets.

    A first pass over the parser's events (no tree, no recursion) measures the nesting
    and the number of nodes with every alias expanded; only a document within both is
    composed (once: the data is constructed from the same node tree, which keeps the
    marks for line numbers). Raises yaml.YAMLError for syntax errors (the caller words
    those) and BenchkitError for a budget exceeded.
    """
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _prescan(yaml.parse(text, Loader=loader_cls), file, max_depth, max_nodes)
    except yaml.YAMLError as exc:
        # libyaml 0.2.6 (PyYAML 6.0.4's wheels) stops at 1,000 levels on its own, scanning
        # ahead of the events the prescan counts: the same budget exceeded, said the same way.
        if "maximum nesting depth" not in str(getattr(exc, "problem", "") or ""):
            raise
        mark = getattr(exc, "problem_mark", None)
        raise BenchkitError(f"YAML nested deeper than {max_depth} levels", file=file,
                            line=mark.line + 1 if mark is not None else None) from None
    loader = loader_cls(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return root, data


def _prescan(events: Any, file: str | None, max_depth: int, max_nodes: int) -> None:
    """Depth and expanded node count from the event stream, in one linear pass.

    Each anchor remembers the size of the node it names, so an alias adds that size
    without walking anything: the count of a billion-laughs bomb reaches the budget
    after a few dozen events. (libyaml's composer recurses in C, so the depth must be
    known before it runs: a document 100,000 deep would crash the process.)
    """
    import yaml

    open_: list[list[Any]] = []         # [anchor, size] of each collection being read
    anchors: dict[str, int] = {}
    count = 0
    for ev in events:
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(open_) >= max_depth:
                raise BenchkitError(f"YAML nested deeper than {max_depth} levels", file=file,
                                    line=ev.start_mark.line + 1)
            open_.append([ev.anchor, 1])
            size = 1
        elif isinstance(ev, yaml.CollectionEndEvent):
            anchor, size = open_.pop()
            if anchor is not None:
                anchors[anchor] = size
            if open_:
                open_[-1][1] += size
            continue
        elif isinstance(ev, yaml.ScalarEvent):
            size = 1
            if ev.anchor is not None:
                anchors[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            if any(anchor == ev.anchor for anchor, _ in open_):
                raise BenchkitError(f"YAML alias *{ev.anchor} refers to a node that "
                                    "contains it", file=file, line=ev.start_mark.line + 1)
            size = anchors.get(ev.anchor, 1)    # an unknown anchor: the composer says so
        else:
            continue
        count += size
        if count > max_nodes:
            raise BenchkitError(f"YAML document too large: more than {max_nodes:,} nodes "
                                "with its aliases expanded", file=file,
                                line=ev.start_mark.line + 1)
        if open_ and not isinstance(ev, yaml.CollectionStartEvent):
            open_[-1][1] += size


def read_yaml_file(path: str | os.PathLike[str], limit: int, what: str,
                   file: str | None = None) -> Any:
    """read_bounded + yaml_load_bounded: the data of a YAML file, or one error line (a
    syntax error names its line)."""
    import yaml

    shown = file or str(path)
    text = read_bounded(path, limit, what, shown)
    try:
        return yaml_load_bounded(text, shown)[1]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BenchkitError(f"not valid YAML: {problem}", file=shown,
                            line=mark.line + 1 if mark else None) from None


def read_json_file(path: str | os.PathLike[str], limit: int, what: str,
                   file: str | None = None) -> Any:
    """read_bounded + json_loads_bounded: the document of a JSON file."""
    shown = file or str(path)
    return json_loads_bounded(read_bounded(path, limit, what, shown), shown)

