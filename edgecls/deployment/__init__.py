"""`edgecls deploy`: from a folder of photos to a verified, benchmarked model per runtime, with one report.

    import edgecls
    result = edgecls.deploy("photos/", targets=["onnxruntime", "openvino", "litert"], max_drop=1.0, out="deploy_out")
    print(result.report, result.picks["overall"]["why"])

Stages (pipeline.py) resume by content hash; the report is edgecls.report.deploy.
"""

from ..errors import DeployError
from .config import DEFAULT_TARGETS, DeployConfig
from .pipeline import DeployResult, deploy

__all__ = ["DEFAULT_TARGETS", "DeployConfig", "DeployError", "DeployResult", "deploy"]
