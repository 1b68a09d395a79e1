"""The one exception type benchkit raises for bad input.

The CLI turns a BenchkitError into a single line on stderr and a non-zero exit,
never a traceback: a user who typed a wrong path needs the file and the field,
not our call stack.
"""

from __future__ import annotations


class BenchkitError(Exception):
    """A problem the user can fix: names the file, the field and, where known, the line."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None,
                 line: int | None = None, exit_code: int = 2) -> None:
        self.message = message
        self.file = file
        self.field = field
        self.line = line
        self.exit_code = exit_code
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.field:
            where = f"{where} [{self.field}]" if where else f"[{self.field}]"
        return f"{where}: {self.message}" if where else self.message
