"""The top-level facade: `import edgecls` is light (the device runtime only) while create_model, export, deploy,
save and load are the real functions, with their own signatures and docstrings for help() and editors."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import edgecls


@pytest.mark.parametrize("name,module,real", [
    ("create_model", "edgecls.models", "create_model"), ("list_archs", "edgecls.models", "list_archs"),
    ("export", "edgecls.exporters", "export"), ("deploy", "edgecls.deployment", "deploy"),
    ("save", "edgecls.models.pt", "save_pt"), ("load", "edgecls.models.pt", "load_pt"),
    ("DeployConfig", "edgecls.deployment", "DeployConfig"),
])
def test_lazy_names_are_the_real_objects(name, module, real):
    import importlib

    obj = getattr(edgecls, name)
    assert obj is getattr(importlib.import_module(module), real)
    if inspect.isfunction(obj):
        params = inspect.signature(obj).parameters
        assert "args" not in params and "kwargs" not in params  # not a (*args, **kwargs) wrapper
        assert obj.__doc__ and obj.__doc__.strip()


def test_every_public_name_resolves_and_is_listed():
    for name in edgecls.__all__:
        assert getattr(edgecls, name) is not None
    assert set(edgecls.__all__) <= set(dir(edgecls))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgecls.nope  # noqa: B018


def test_import_edgecls_loads_only_the_device_runtime():
    code = ("import sys, edgecls\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'onnx', 'openvino', 'matplotlib'))\n"
            "tooling = sorted(m for m in sys.modules if m.startswith('edgecls.') and not m.startswith(('edgecls.runtime', "
            "'edgecls.errors', 'edgecls.version')))\n"
            "print(heavy, tooling)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[] []", r.stdout + r.stderr


def test_deploy_is_a_function_and_its_package_has_another_name():
    import edgecls.deployment  # importing the package must not rebind edgecls.deploy

    assert inspect.isfunction(edgecls.deploy) and edgecls.deploy is edgecls.deployment.deploy
