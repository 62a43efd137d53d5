"""The reports' shared parts: the deploy report's section list is explicit and complete with one id per section,
every table renders to HTML and Markdown from the same rows, and text from the user's files is escaped in both.
Contexts come from a real run: the deploy pipeline's data stage on a folder made here."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil

import pytest
from PIL import Image
from report_tables import assert_same_tables, section_tables

import edgecls.report.deploy as deploy_report
from edgecls.report import document


# --- the deploy report's section list ----------------------------------------------------------------------------
def _section_modules():
    pkg = deploy_report
    return [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]


def _builders(module) -> list:
    """The section builders a module defines: public functions (ctx) -> Section | None."""
    return [fn for name, fn in inspect.getmembers(module, inspect.isfunction)
            if fn.__module__ == module.__name__ and not name.startswith("_")
            and list(inspect.signature(fn).parameters) == ["ctx"] and "Section" in str(fn.__annotations__.get("return"))]


def _section_ids(fn) -> set[str]:
    """The ids a builder gives its Section(...) calls, read from its source."""
    tree = ast.parse(inspect.getsource(fn).lstrip())
    return {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Section"
            and n.args and isinstance(n.args[0], ast.Constant)}


def test_the_deploy_report_lists_every_section_once_in_one_explicit_list():
    listed = deploy_report.SECTIONS
    assert isinstance(listed, tuple), "a list others append to on import is registration by side effect"
    assert len(set(listed)) == len(listed)
    found = [fn for m in _section_modules() for fn in _builders(m)]
    assert len(found) >= 16, [f.__name__ for f in found]
    missing = [f"{f.__module__}.{f.__name__}" for f in found if f not in listed]
    assert not missing, f"section builders not in SECTIONS (they would never be shown): {missing}"
    assert not hasattr(deploy_report, "add_section")
    # each id is one section's, or a single-label/multi-label pair's of which a run builds one (same JSON key)
    owners: dict[str, list[str]] = {}
    for fn in listed:
        ids = _section_ids(fn)
        assert len(ids) == 1, (fn.__name__, ids)
        owners.setdefault(ids.pop(), []).append(fn.__name__)
    pairs = {k: v for k, v in owners.items() if len(v) > 1}
    assert pairs == {"per_class": ["per_class_section", "per_label_section"], "int8": ["int8_section", "int8_map_section"]}
    assert list(owners)[:3] == ["summary", "data", "recipe"] and list(owners)[-2:] == ["reproduce", "run"]


# --- rendering, on a real run's data stage ----------------------------------------------------------------------
MARKUP_CLASS = "<img src=x onerror=alert(1)>"  # a folder name a browser or a Markdown viewer would run as HTML
MARKUP_FILE = "notes|<b>draft.txt"  # a pipe would split a Markdown table cell


@pytest.fixture(scope="module")
def data_stage(photos, tmp_path_factory):
    """The deploy pipeline's data stage on a real folder: two classes of real photos, one named with markup, and an
    unreadable file whose name carries a pipe and a tag."""
    from edgecls.deployment import DeployConfig
    from edgecls.deployment.pipeline import Pipeline

    root = tmp_path_factory.mktemp("marked")
    for cls, names in ((MARKUP_CLASS, ("coffee", "chelsea", "astronaut")), ("plain", ("rocket", "coins", "camera"))):
        (root / cls).mkdir()
        for name in names:
            for k in range(3):
                img = photos[name][k * 8:, k * 8:]
                Image.fromarray(img).resize((48, 40)).save(root / cls / f"{name}{k}.jpg")
    (root / "plain" / MARKUP_FILE).write_text("not a picture")
    stage = Pipeline(DeployConfig(data=str(root), out=str(tmp_path_factory.mktemp("out")))).stage_data()
    return stage


def test_html_and_markdown_show_the_same_tables_and_escape_markup(data_stage):
    from edgecls.report.deploy.data import data_section

    s = data_section({"data": data_stage})
    assert [x["path"] for x in s.data["skipped"]] and MARKUP_FILE in s.data["skipped"][0]["path"]
    page = document.to_html([s], "t", "m")
    md, files = document.to_markdown([s], "t", "m", "f")
    assert_same_tables([s], page, md)
    assert MARKUP_CLASS in section_tables([s])[0][1]  # the class table holds the raw name ...
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # ... HTML shows it as text
    assert "<img src=x" not in md and "<b>draft" not in md and "notes\\|&lt;b>draft.txt" in md
    assert set(files) == {"sizes.png"} and files["sizes.png"][:4] == b"\x89PNG"
    assert "data:image/png;base64," in page and "](f/sizes.png)" in md


def test_text_blocks_escape_the_same_way(data_stage):
    """A paragraph, a list item and a code block carrying the data's own folder name: text in HTML and Markdown."""
    from edgecls.report.deploy.data import data_section

    root = data_section({"data": data_stage}).data["train_root"]
    s = document.Section("x", f"folder {root}").p(f"from {root}/{MARKUP_CLASS}").items([MARKUP_CLASS]).code(f"ls '{MARKUP_CLASS}'")
    page = document.to_html([s], MARKUP_CLASS, MARKUP_CLASS)
    md, _ = document.to_markdown([s], MARKUP_CLASS, MARKUP_CLASS, "f")
    assert "<img" not in page and page.count("&lt;img src=x onerror=alert(1)&gt;") == 6  # title, h1, meta, p, li, pre
    assert md.count("&lt;img src=x onerror=alert(1)>") == 4 and f"ls '{MARKUP_CLASS}'" in md  # code is literal in a fence
