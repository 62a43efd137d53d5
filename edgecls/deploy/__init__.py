"""`edgecls deploy`: from a folder of photos to a verified, benchmarked model per runtime, with one report.

    import edgecls
    result = edgecls.deploy("photos/", targets=["onnxruntime", "openvino", "litert"], max_drop=1.0, out="deploy_out")
    print(result.report, result.picks["overall"]["why"])

Stages (pipeline.py) resume by content hash; the report (report.py) is a list of sections other features extend.
"""

import sys
import types

from .config import DEFAULT_TARGETS, DeployConfig
from .data import DeployError
from .pipeline import DeployResult, deploy

__all__ = ["DEFAULT_TARGETS", "DeployConfig", "DeployError", "DeployResult", "deploy"]


class _CallableModule(types.ModuleType):
    """`import edgecls.deploy` (or `from edgecls.deploy import ...`) rebinds the package attribute `edgecls.deploy`
    from the function to this module; calling the module runs the function, so `edgecls.deploy(...)` keeps working."""

    def __call__(self, *args, **kwargs):
        return deploy(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
