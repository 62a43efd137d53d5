"""Reading a report's tables back from its HTML and its Markdown, as a reader of each sees them, to check that both
show the rows the sections hold (tests of the deploy, bench and robustness reports use it)."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def html_tables(text: str) -> list[list[list[str]]]:
    """Every <table> as rows of cell texts (the header row first), entities decoded."""
    p = _Tables()
    p.feed(text)
    return p.tables


def _md_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])  # an escaped \| stays inside its cell
    return [html.unescape(c.strip().replace("\\|", "|").replace("\\\\", "\\")) for c in cells]


def md_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table as rows of cell texts (the header row first, the |---| line dropped), as a viewer shows them."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            if not re.fullmatch(r"\|(---\|)+", line.strip()):
                current.append(_md_row(line))
        else:
            current = None
    return tables


def section_tables(sections) -> list[list[list[str]]]:
    return [[t.headers, *t.rows] for s in sections for t in s.tables()]


def _folded(tables):
    """White space folded: HTML shows a newline in a cell as a space, Markdown's cell holds a space for it."""
    return [[[" ".join(c.split()) for c in row] for row in t] for t in tables]


def assert_same_tables(sections, html_text: str, md_text: str) -> None:
    """HTML and Markdown show every table of the sections, cell for cell, in order."""
    want = _folded(section_tables(sections))
    assert want, "no tables to compare"
    assert _folded(html_tables(html_text)) == want
    assert _folded(md_tables(md_text)) == want
