"""A report as a list of sections, rendered three ways: HTML (one file, figures embedded as data: URIs, no network),
Markdown (figures written beside it) and JSON (each section's figures as data).

Every report edgecls writes (deploy, bench, robustness) renders through here, so they share one stylesheet, one
table rendering and one escaping rule. A table is kept as rows of strings and rendered to HTML and Markdown from
those same rows, so the two never disagree.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Union

from ..runtime.artifacts import atomic_write_bytes


class Paragraph(NamedTuple):
    text: str


class Warn(NamedTuple):
    text: str


class Items(NamedTuple):
    items: list[str]


class Code(NamedTuple):
    text: str


class Figure(NamedTuple):
    name: str  # the PNG's file name beside the Markdown
    png: bytes
    alt: str


class Table(NamedTuple):
    headers: list[str]
    rows: list[list[str]]


Block = Union[Paragraph, Warn, Items, Code, Figure, Table]


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # what the JSON holds for this section

    def p(self, text: str) -> Section:
        self.blocks.append(Paragraph(text))
        return self

    def warn(self, text: str) -> Section:
        self.blocks.append(Warn(text))
        return self

    def table(self, headers: list[str], rows: list[list]) -> Section:
        # cells become text once, here: HTML and Markdown then print the same strings
        self.blocks.append(Table([str(h) for h in headers], [["-" if v is None else str(v) for v in r] for r in rows]))
        return self

    def img(self, name: str, png: bytes, alt: str) -> Section:
        self.blocks.append(Figure(name, png, alt))
        return self

    def items(self, items: list[str]) -> Section:
        self.blocks.append(Items(list(items)))
        return self

    def code(self, text: str) -> Section:
        self.blocks.append(Code(text))
        return self

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;padding:16px 24px;color:#1d2330;line-height:1.45}
h1{font-size:1.6em;margin:.3em 0}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #d8dde6;padding-bottom:4px}
nav{font-size:.9em;margin:.5em 0 1em;display:flex;flex-wrap:wrap;gap:.2em 1em}nav a{white-space:nowrap}
.tw{overflow-x:auto;margin:.6em 0}table{border-collapse:collapse;font-size:.86em}
th,td{border:1px solid #d8dde6;padding:3px 7px;text-align:left;vertical-align:top;max-width:520px;overflow-wrap:break-word}
td.n{white-space:nowrap}td.w{overflow-wrap:anywhere}td.num{text-align:right}
th{background:#f1f4f8}tr:nth-child(even) td{background:#fafbfd}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
pre{background:#f4f6f9;padding:8px 10px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85em}
.warn{background:#fff4e0;border-left:4px solid #f0a020;padding:6px 10px}
.meta{color:#5a6375;font-size:.85em}
"""

_NUMBER = re.compile(r"[-+]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?%?")


def _cell_class(text: str) -> str:
    """Numbers line up on the right; short cells (names) never wrap; long unbroken ones (file paths) may wrap anywhere."""
    if _NUMBER.fullmatch(text):
        return "n num"
    if len(text) <= 18:
        return "n"
    return "w" if max(map(len, text.split()), default=0) > 40 else ""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_block(b: Block) -> str:
    if isinstance(b, Paragraph):
        return f"<p>{_esc(b.text)}</p>"
    if isinstance(b, Warn):
        return f"<p class='warn'>{_esc(b.text)}</p>"
    if isinstance(b, Items):
        return "<ul>" + "".join(f"<li>{_esc(x)}</li>" for x in b.items) + "</ul>"
    if isinstance(b, Code):
        return f"<pre>{_esc(b.text)}</pre>"
    if isinstance(b, Figure):
        return f"<img alt='{_esc(b.alt)}' src='data:image/png;base64,{base64.b64encode(b.png).decode()}'>"
    head = "".join(f"<th>{_esc(h)}</th>" for h in b.headers)
    body = "".join("<tr>" + "".join(f"<td class='{_cell_class(c)}'>{_esc(c)}</td>" for c in row) + "</tr>" for row in b.rows)
    return f"<div class='tw'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def to_html(sections: list[Section], title: str, meta: str) -> str:
    nav = "\n".join(f"<a href='#{_esc(s.id)}'>{_esc(s.title.split(':')[0])}</a>" for s in sections)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width,initial-scale=1'>"
             f"<title>{_esc(title)}</title><style>{CSS}</style></head><body><h1>{_esc(title)}</h1>",
             f"<div class='meta'>{_esc(meta)}</div><nav>{nav}</nav>"]
    for s in sections:
        parts.append(f"<h2 id='{_esc(s.id)}'>{_esc(s.title)}</h2>")
        parts += [_html_block(b) for b in s.blocks]
    parts.append("</body></html>")
    return "\n".join(parts)


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # what CommonMark would take for raw HTML; a bare "<" (p < 0.05) is text


def md_text(text: str) -> str:
    """Text as Markdown shows it literally: a file name like 'a<img src=x>.jpg' must not become HTML in a viewer."""
    return _TAG_START.sub("&lt;", text)


def md_cell(text: str) -> str:
    return md_text(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_fence(text: str) -> str:
    """A fence longer than any run of backticks in the text, so the code block cannot be closed early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _md_block(b: Block, files_dir: str, files: dict[str, bytes]) -> list[str]:
    if isinstance(b, Paragraph):
        return [md_text(b.text), ""]
    if isinstance(b, Warn):
        return [f"> **Warning:** {md_text(b.text)}", ""]
    if isinstance(b, Items):
        return [f"- {md_text(x)}" for x in b.items] + [""]
    if isinstance(b, Code):
        fence = _md_fence(b.text)
        return [fence, b.text, fence, ""]
    if isinstance(b, Figure):
        files[b.name] = b.png
        return [f"![{md_cell(b.alt)}]({files_dir}/{b.name})", ""]
    return (["| " + " | ".join(map(md_cell, b.headers)) + " |", "|" + "---|" * len(b.headers)]
            + ["| " + " | ".join(map(md_cell, row)) + " |" for row in b.rows] + [""])


def to_markdown(sections: list[Section], title: str, meta: str, files_dir: str) -> tuple[str, dict[str, bytes]]:
    """(Markdown, {file name: PNG}): the figures go in files_dir, beside the Markdown file."""
    lines, files = [f"# {md_text(title)}", "", md_text(meta), ""], {}
    for s in sections:
        lines += [f"## {md_text(s.title)}", ""]
        for b in s.blocks:
            lines += _md_block(b, files_dir, files)
    return "\n".join(lines), files


def jsonable(obj):
    """NaN and infinity are not JSON: None, so the report's JSON loads anywhere."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # a numpy scalar
        return jsonable(obj.item())
    return obj


def to_json(sections: list[Section], title: str, meta: str, schema: str) -> str:
    data = {"schema": schema, "title": title, "meta": meta, "titles": {s.id: s.title for s in sections},
            "sections": {s.id: jsonable(s.data) for s in sections}}
    return json.dumps(data, indent=1, default=str, allow_nan=False)


def write(sections: list[Section], folder: Path, stem: str, title: str, meta: str, schema: str) -> Path:
    """folder/stem.md with its figures in folder/stem_files/, folder/stem.json, then folder/stem.html (returned):
    each written atomically, so a reader never sees half a report."""
    md, files = to_markdown(sections, title, meta, f"{stem}_files")
    for name, png in files.items():
        atomic_write_bytes(folder / f"{stem}_files" / name, png)
    atomic_write_bytes(folder / f"{stem}.md", md.encode())
    atomic_write_bytes(folder / f"{stem}.json", to_json(sections, title, meta, schema).encode())
    path = folder / f"{stem}.html"
    atomic_write_bytes(path, to_html(sections, title, meta).encode())
    return path


__all__ = ["CSS", "Code", "Figure", "Items", "Paragraph", "Section", "Table", "Warn", "jsonable", "md_cell", "md_text",
           "to_html", "to_json", "to_markdown", "write"]
