"""Layering: packages import only downward (the import-linter layers contract in pyproject.toml), the device
runtime imports nothing from edgecls but the error types and the version, no import cycle anywhere, and no module
imports another module's private names."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layers_contract_holds():
    r = lint(REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "1 kept, 0 broken" in r.stdout


def test_the_contract_catches_a_violation(tmp_path):
    """The same contract on a copy of the package where the Predictor reaches into export tooling: it must fail."""
    shutil.copytree(REPO / "edgecls", tmp_path / "edgecls", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "edgecls" / "runtime" / "predictor.py", "a") as fh:
        fh.write("\n\ndef _verify_here():\n    from ..exporters.verify import check  # noqa: F401\n")
    r = lint(tmp_path)
    assert r.returncode != 0 and "edgecls.runtime.predictor -> edgecls.exporters.verify" in r.stdout, r.stdout[-3000:]


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the edgecls modules it imports (anywhere in the file, function bodies too; TYPE_CHECKING blocks
    excluded), as import-linter's grimp reads them. In a child process: grimp finds the package through the import
    system, which in this process already holds the repository's edgecls."""
    import json

    code = ("import grimp, json; g = grimp.build_graph('edgecls', exclude_type_checking_imports=True, cache_dir=None); "
            "print(json.dumps({m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}))")
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(root)}, cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return {m: set(ts) for m, ts in json.loads(r.stdout).items()}


def runtime_imports_outside(graph: dict[str, set[str]]) -> list[str]:
    allowed = ("edgecls.runtime", "edgecls.errors", "edgecls.version")
    return sorted(f"{m} -> {t}" for m, ts in graph.items() if m == "edgecls.runtime" or m.startswith("edgecls.runtime.")
                  for t in ts if not any(t == a or t.startswith(a + ".") for a in allowed))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_runtime_imports_nothing_but_errors_and_version():
    """The device runtime's one-line contract: `pip install 'edgecls[onnx]'` on a camera box never loads training,
    compression, export or reporting code through it."""
    assert runtime_imports_outside(import_graph(REPO)) == []


def test_no_import_cycles_anywhere():
    assert cycles(import_graph(REPO)) == []


def test_no_import_cycle_through_the_reports():
    """The deploy report imports its section modules; none imports it back (issue 25: report.deploy <-> the open-set,
    robustness and multi-label sections, which imported Section from it and were imported to register themselves)."""
    assert [c for c in cycles(import_graph(REPO)) if any(m.startswith("edgecls.report") for m in c)] == []


def test_the_graph_checks_catch_a_cycle_and_an_upward_import(tmp_path):
    shutil.copytree(REPO / "edgecls", tmp_path / "edgecls", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "edgecls" / "runtime" / "scores.py", "a") as fh:
        fh.write("\n\ndef _stats():\n    from .. import stats  # noqa: F401\n    from . import predictor  # noqa: F401\n")
    graph = import_graph(tmp_path)
    assert "edgecls.runtime.scores -> edgecls.stats" in runtime_imports_outside(graph)
    assert any({"edgecls.runtime.scores", "edgecls.runtime.predictor"} <= set(c) for c in cycles(graph))


def _private_imports(path: Path) -> list[str]:
    """`from <edgecls module> import _name` and `module._name` on an imported edgecls module."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("edgecls")):
            found += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            modules |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("edgecls")}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_private_names_across_modules():
    found = [f for p in sorted((REPO / "edgecls").rglob("*.py")) for f in _private_imports(p)]
    found += [f for p in sorted((REPO / "tools").rglob("*.py")) for f in _private_imports(p)]
    assert not found, "make the shared helper public instead:\n" + "\n".join(found)


def test_the_private_name_check_sees_both_forms(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from ..artifacts import _fsync_dir\nfrom edgecls import exporters\nexporters._publish(1, 2)\n")
    assert [f.split(" ", 1)[1] for f in _private_imports(p)] == ["imports _fsync_dir", "uses exporters._publish"]


def test_version_comes_from_package_metadata_with_a_fallback(tmp_path):
    from importlib.metadata import version

    import edgecls

    assert edgecls.__version__ == version("edgecls")
    # a source tree that was never installed (no site-packages, no metadata): a version that says so, not a crash
    code = ("import importlib.util as u; s = u.spec_from_file_location('v', r'%s'); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); print(m.package_version())" % (REPO / "edgecls" / "version.py"))
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "0+unknown", r.stderr


def test_every_module_imports():
    """Each module loads on its own (the fast subset reaches the ones only slow tests run: QAT, PT2E, plots)."""
    import importlib
    import pkgutil

    import edgecls

    names = [m.name for m in pkgutil.walk_packages(edgecls.__path__, "edgecls.") if not m.name.endswith("__main__")]
    assert len(names) > 100
    for name in names:
        importlib.import_module(name)
