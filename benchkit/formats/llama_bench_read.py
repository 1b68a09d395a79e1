"""llama-bench's files read within bounds: the rows of json, jsonl, csv and sql, counted as
they are read.

A 16 MiB size cap (`benchkit.core.safeio.MAX_IMPORT_BYTES`) bounds the bytes, not the work:
16 MiB of minimal CSV rows is two million tests, a one-line `[` nested 100,000 deep
overflows the parser's stack, and SQL is a language (a 1.5 KB self-join runs for ever).
So every reader here stops at the first row past `MAX_TESTS`, refuses a row of more than
`MAX_FIELDS` fields, and never runs the SQL it reads: `-o sql` is parsed as what llama-bench
writes (CREATE TABLE llama_bench, INSERT INTO llama_bench ... VALUES, and the BEGIN /
COMMIT / PRAGMA lines of an sqlite dump), in one linear pass, with sqlite's column types
applied the way sqlite applies them. Anything else in the file is one error line naming
the statement's line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Iterator

from benchkit.core.errors import BenchkitError

MAX_TESTS = 10_000         # tests in one file: llama-bench writes ~1.5 KB a test
MAX_FIELDS = 100           # fields of one test: llama-bench writes 44
MAX_SAMPLES = 100_000      # repetitions in one file: 10,000 tests of -r 10
MAX_RESULTS = 32           # machines and builds in one file: one result file each
MAX_TEXT = 4096            # characters of one value (a path, a CPU's name), samples aside
MAX_COMMENTS = 1000        # SQL comments: llama-bench and sqlite's .dump write none

RawRow = tuple[dict[str, Any], str, int | None]   # fields, where ("[3]", "line 4"), line


def read_rows(text: str, fmt: str, file: str) -> list[RawRow]:
    """The raw rows of a file in format `fmt`, within the caps above."""
    reader = {"json": _json_rows, "jsonl": _jsonl_rows, "csv": _csv_rows, "sql": _sql_rows}[fmt]
    rows: list[RawRow] = []
    for row in reader(text, file):
        if len(rows) == MAX_TESTS:
            raise BenchkitError(f"more than {MAX_TESTS:,} llama-bench tests in one file (at "
                                f"most {MAX_TESTS:,}): split it", file=file, line=row[2])
        _check_row(*row, file)
        rows.append(row)
    return rows


def _check_row(fields: dict[str, Any], where: str, line: int | None, file: str) -> None:
    """A flat row of at most MAX_FIELDS fields (a list of numbers is the deepest value),
    each text at most MAX_TEXT characters (samples aside: MAX_SAMPLES counts those)."""
    if len(fields) > MAX_FIELDS:
        raise BenchkitError(f"{len(fields):,} fields in one test (llama-bench writes 44; at "
                            f"most {MAX_FIELDS})", file=file, line=line,
                            field=None if line else where)
    for name, value in fields.items():
        field = name[:40] if line else f"{where}.{name[:40]}"
        if len(name) > MAX_TEXT or (isinstance(value, str) and len(value) > MAX_TEXT
                                    and not name.startswith("samples_")):
            raise BenchkitError(f"a text of more than {MAX_TEXT:,} characters (llama-bench "
                                "writes names, not documents)", file=file, line=line,
                                field=field)
        if isinstance(value, dict) or (isinstance(value, list) and any(
                isinstance(x, (list, dict)) for x in value)):
            raise BenchkitError("nested value: llama-bench writes a number, a text or a list "
                                "of numbers", file=file, line=line, field=field)


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


# --------------------------------------------------------------------------- json, jsonl

_SPACE = re.compile(r"[ \t\n\r]*")


def _json_rows(text: str, file: str) -> Iterator[RawRow]:
    """The items of the top-level list, decoded one at a time (a list of two million
    objects is refused at its 20,001st, not built first)."""
    decoder = json.JSONDecoder()
    pos = _SPACE.match(text).end()
    if not text.startswith("[", pos):
        raise BenchkitError("expected a JSON list of llama-bench tests (-o json)", file=file)
    pos = _SPACE.match(text, pos + 1).end()
    index = 0
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            item, pos = _decode(decoder, text, pos, file)
            if not isinstance(item, dict):
                raise BenchkitError("expected an object (one llama-bench test)", file=file,
                                    field=f"[{index}]")
            yield item, f"[{index}]", None
            index += 1
            pos = _SPACE.match(text, pos).end()
            if text.startswith(",", pos):
                pos = _SPACE.match(text, pos + 1).end()
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise BenchkitError("not valid JSON (expected ',' or ']'; truncated?)", file=file,
                                line=_line_at(text, pos))
    if _SPACE.match(text, pos).end() != len(text):
        raise BenchkitError("not valid JSON (extra data after the list)", file=file,
                            line=_line_at(text, pos))


def _decode(decoder: json.JSONDecoder, text: str, pos: int, file: str,
            line: int | None = None) -> tuple[Any, int]:
    """One JSON value at `pos`; every way it can fail is one line."""
    try:
        return decoder.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise BenchkitError(f"not valid JSON ({exc.msg}; truncated?)", file=file,
                            line=line or exc.lineno) from None
    except RecursionError:
        raise BenchkitError("not valid JSON for llama-bench: nested thousands of levels "
                            "deep (a llama-bench test is flat)", file=file,
                            line=line or _line_at(text, pos)) from None
    except ValueError as exc:          # an integer of more digits than Python converts
        raise BenchkitError(f"not a usable JSON value ({exc})", file=file,
                            line=line or _line_at(text, pos)) from None


def _jsonl_rows(text: str, file: str) -> Iterator[RawRow]:
    decoder = json.JSONDecoder()
    for n, line in enumerate(text.splitlines(), 1):
        start = _SPACE.match(line).end()
        if start == len(line):
            continue
        item, end = _decode(decoder, line, start, file, line=n)
        if _SPACE.match(line, end).end() != len(line):
            raise BenchkitError("not valid JSON (extra data after the object)", file=file,
                                line=n)
        if not isinstance(item, dict):
            raise BenchkitError("expected one JSON object per line (-o jsonl)", file=file,
                                line=n)
        yield item, f"line {n}", n


# --------------------------------------------------------------------------- csv

def _csv_rows(text: str, file: str) -> Iterator[RawRow]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        if len(header) > MAX_FIELDS:
            raise BenchkitError(f"{len(header):,} columns (llama-bench writes 44; at most "
                                f"{MAX_FIELDS})", file=file, line=1)
        for values in reader:
            if not values:
                continue
            if len(values) != len(header):
                raise BenchkitError(f"{len(values)} values for {len(header)} columns",
                                    file=file, line=reader.line_num)
            yield dict(zip(header, values)), f"line {reader.line_num}", reader.line_num
    except csv.Error as exc:
        raise BenchkitError(f"not valid CSV ({exc})", file=file,
                            line=reader.line_num) from None


# --------------------------------------------------------------------------- sql

def _sql_rows(text: str, file: str) -> Iterator[RawRow]:
    """Rows of llama-bench's SQL, parsed statement by statement as the tokens come
    (nothing is executed, and no more than one row is held before it is yielded)."""
    sql = _Tokens(text, file)
    table: dict[str, str] | None = None        # column -> declared type, once created
    n = statements = 0
    while sql.peek():
        line = sql.line
        head = sql.peek()
        statements += 1
        if statements > MAX_TESTS + 1000:
            raise sql.refuse(f"more than {MAX_TESTS + 1000:,} statements (llama-bench writes "
                             "one a test)")
        if head == ";":
            sql.take()
        elif head == "CREATE":
            table = _create(sql, table)
        elif head == "INSERT":
            for values in _insert(sql, table):
                n += 1
                yield values, f"row {n}", line
        elif head in ("BEGIN", "COMMIT", "END"):
            sql.take()
            if sql.peek() == "TRANSACTION":
                sql.take()
            sql.end()
        elif head == "PRAGMA":               # sqlite3 .dump begins with this one only
            for word in ("PRAGMA", "FOREIGN_KEYS", "=", "OFF"):
                sql.take(word)
            sql.end()
        else:
            raise sql.refuse(f"only CREATE TABLE {TABLE} and INSERT INTO {TABLE} are read, "
                             f"not {head[:20]}")


_TOKEN = re.compile(r"""
    (?P<space>\s*(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))|\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<name>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<punct>[(),;=])
""", re.X | re.S)
TABLE = "llama_bench"


class _Tokens:
    """The SQL text as tokens (spaces and comments left out), read one at a time."""

    def __init__(self, text: str, file: str) -> None:
        self.text, self.file, self.pos, self.line = text, file, 0, 1
        self.next: tuple[str, str] | None = None
        self.comments = 0
        self._advance()

    def _advance(self) -> None:
        while self.pos < len(self.text):
            m = _TOKEN.match(self.text, self.pos)
            if m is None:
                raise self.refuse(f"unexpected {self.text[self.pos:self.pos + 20]!r}")
            kind = "space" if m.group("space") is not None else m.lastgroup
            if kind != "space":
                self.next = (kind or "", m.group())
                self.line += self.text.count("\n", self.pos, m.start())
                self.pos = m.end()
                return
            if m.group("comment") is not None:
                self.comments += 1
                if self.comments > MAX_COMMENTS:
                    raise self.refuse(f"more than {MAX_COMMENTS:,} comments (llama-bench "
                                      "writes none)")
            self.line += m.group().count("\n")
            self.pos = m.end()
        self.next = None

    def refuse(self, why: str) -> BenchkitError:
        return BenchkitError(f"not llama-bench's SQL (-o sql): {why}", file=self.file,
                             line=self.line)

    def peek(self) -> str:
        """The next token, upper-cased ("" at the end)."""
        return self.next[1].upper() if self.next else ""

    def take(self, *words: str) -> tuple[str, str]:
        """The next token (one of `words`, when given)."""
        token = self.next
        if token is None:
            raise self.refuse("the file ends inside a statement")
        if words and token[1].upper() not in words:
            raise self.refuse(f"expected {' or '.join(words)}, found {token[1][:20]!r}")
        self._advance()
        return token

    def name(self) -> str:
        kind, text = self.take()
        if kind != "name":
            raise self.refuse(f"expected a name, found {text[:20]!r}")
        if text[:1] in "\"`[":
            return text[1:-1].replace('""', '"') if text[0] == '"' else text[1:-1]
        return text

    def table(self) -> None:
        name = self.name()
        if name.lower() != TABLE:
            raise self.refuse(f"only the {TABLE} table is read, not {name[:40]!r}")

    def end(self) -> None:
        """The end of a statement: `;` or the end of the file."""
        if self.next is not None:
            self.take(";")


def _create(sql: _Tokens, table: dict[str, str] | None) -> dict[str, str]:
    """CREATE TABLE [IF NOT EXISTS] llama_bench (column type, ...): the declared types."""
    sql.take("CREATE")
    sql.take("TABLE")
    exists_ok = sql.peek() == "IF"
    if exists_ok:
        for word in ("IF", "NOT", "EXISTS"):
            sql.take(word)
    sql.table()
    sql.take("(")
    columns: dict[str, str] = {}
    while True:
        name = sql.name()
        declared = []
        while sql.peek() not in (",", ")", ";", ""):
            declared.append(sql.take()[1].upper())
            if len(declared) > 8:
                raise sql.refuse(f"the type of column {name[:40]!r} is not one sqlite reads")
        columns[name] = " ".join(declared)
        if len(columns) > MAX_FIELDS:
            raise sql.refuse(f"more than {MAX_FIELDS} columns")
        if sql.take(",", ")")[1] == ")":
            break
    sql.end()
    if table is not None:
        if not exists_ok:
            raise sql.refuse(f"table {TABLE} already exists")
        return table
    return columns


def _insert(sql: _Tokens, table: dict[str, str] | None) -> Iterator[dict[str, Any]]:
    """INSERT INTO llama_bench [(columns)] VALUES (...), (...): one row per tuple."""
    sql.take("INSERT")
    sql.take("INTO")
    sql.table()
    columns = list(table or ())
    if sql.peek() == "(":
        sql.take("(")
        columns = [sql.name()]
        while sql.take(",", ")")[1] == ",":
            columns.append(sql.name())
            if len(columns) > MAX_FIELDS:
                raise sql.refuse(f"more than {MAX_FIELDS} columns")
    if not columns:
        raise sql.refuse(f"INSERT without columns before CREATE TABLE {TABLE}")
    unknown = [col for col in columns if table is not None and col not in table]
    if unknown:
        raise sql.refuse(f"table {TABLE} has no column named {unknown[0][:40]!r}")
    sql.take("VALUES")
    while True:
        sql.take("(")
        values = [_literal(sql)]
        while sql.take(",", ")")[1] == "," and len(values) <= len(columns):
            values.append(_literal(sql))
        if len(values) != len(columns):
            raise sql.refuse(f"{len(values)} values for {len(columns)} columns")
        yield {col: _affinity(v, (table or {}).get(col, "")) for col, v in zip(columns, values)}
        if sql.peek() != ",":
            break
        sql.take(",")
    sql.end()


def _literal(sql: _Tokens) -> Any:
    """A value: a quoted text, a number, NULL, TRUE or FALSE (no expression is read)."""
    kind, text = sql.take()
    if kind == "string":
        return text[1:-1].replace("''", "'")
    if kind == "number":
        return float(text) if re.search(r"[.eE]", text) else int(text)
    word = text.upper() if kind == "name" else ""
    if word in ("NULL", "TRUE", "FALSE"):
        return {"NULL": None, "TRUE": 1, "FALSE": 0}[word]
    raise sql.refuse(f"expected a value, found {text[:20]!r} (only literal values are read)")


_NUMERIC = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*")


def _affinity(value: Any, declared: str) -> Any:
    """The value as sqlite stores it in a column of this declared type (its type affinity:
    INTEGER and REAL columns turn numeric text into numbers, TEXT columns numbers into
    text), so that a row reads as it did through sqlite."""
    numeric = "INT" in declared or any(k in declared for k in ("REAL", "FLOA", "DOUB"))
    if value is None or not numeric:
        if value is not None and any(k in declared for k in ("CHAR", "CLOB", "TEXT")):
            return value if isinstance(value, str) else str(value)
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        value = float(value) if re.search(r"[.eE]", value) else int(value)
    if "INT" in declared and isinstance(value, float) and value.is_integer() \
            and abs(value) < 2**63:
        return int(value)
    if "INT" not in declared and isinstance(value, int):
        return float(value)
    return value
