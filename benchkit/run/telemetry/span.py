"""What every source shares: the window one summary covers, and a source that is off."""

from __future__ import annotations

from typing import Any


class Span:
    """The window one summary covers: its readings and the case's tokens."""

    def __init__(self, t0: float, t1: float, rows: list[tuple[float, dict[str, Any]]],
                 before: dict[str, Any], tokens: int | None) -> None:
        self.t0, self.t1, self.rows, self.before, self.tokens = t0, t1, rows, before, tokens

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    def of(self, source: str) -> list[Any]:
        """That source's readings in the window (those it could take)."""
        return [r[source] for _, r in self.rows if r.get(source) is not None]

    def per_token(self, joules: float | None) -> dict[str, Any]:
        """Energy figures: J, mean W, J/token and tokens/J where there are tokens."""
        if joules is None:
            return {"energy_j": None}
        out = {"energy_j": joules, "power_w_mean": joules / self.seconds if self.seconds else None}
        if self.tokens and joules > 0:
            out.update(joules_per_token=joules / self.tokens, tokens_per_joule=self.tokens / joules)
        return out


class Off:
    """A source that is not read, with the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def open(self) -> None: ...

    def read(self) -> None:
        return None

    def close(self, t: float) -> None: ...

    def summarize(self, span: Span) -> dict[str, Any]:
        return {"unavailable": self.reason}
