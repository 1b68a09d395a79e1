"""Tables and headings of Markdown as markdown-it-py parses it: what a reader of a report sees."""

from __future__ import annotations


def tables(tokens) -> list[list[list[str]]]:
    """Every table as rows of cell texts (header row first)."""
    tables, rows, row, cell, in_cell = [], None, None, [], False
    for tok in tokens:
        if tok.type == "table_open":
            rows = []
        elif tok.type == "table_close":
            tables.append(rows)
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "tr_close":
            rows.append(row)
        elif tok.type in ("th_open", "td_open"):
            cell, in_cell = [], True
        elif tok.type in ("th_close", "td_close"):
            row.append("".join(cell).strip())
            in_cell = False
        elif tok.type == "inline" and in_cell:
            cell.append(tok.content)
    return tables


def headings(tokens, level: str = "h2") -> list[str]:
    return [tokens[i + 1].content for i, t in enumerate(tokens)
            if t.type == "heading_open" and t.tag == level]
