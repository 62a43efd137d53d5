"""`edgecls adopt MODEL [--spec-from ORIGINAL]`: take in a model another tool re-saved or transformed after edgecls
exported it; the work is edgecls.exporters.adopt's."""

from __future__ import annotations

import json

NAME = "adopt"
HELP = ("take in a model another tool re-saved or transformed (OpenVINO save_model, NNCF, quantize_static, onnxslim, "
        "ai_edge_quantizer): re-embed its spec for the new graph, record the step, self-check")
DESCRIPTION = ("MODEL (.onnx, .xml, .tflite) was made from an edgecls export by another tool. Its spec (the one it "
               "carries, or ORIGINAL's) is re-embedded with the precision the new graph has and an 'adopt' step in its "
               "lineage; the self-check record goes with it; the new graph's fingerprint is recorded. The result is "
               "self-checked on this machine's runtime before it replaces MODEL and its sidecar; a failing model is "
               "reported and nothing is written.")


def add_arguments(p) -> None:
    p.add_argument("model", help="the file the tool wrote (.onnx, .xml with its .bin, .tflite); replaced in place")
    p.add_argument("--spec-from", metavar="ORIGINAL",
                   help="the edgecls file it was made from (or that file's .json sidecar), when MODEL lost its spec "
                        "or should take another's")
    p.add_argument("--json", action="store_true", help="print the adopted spec and the self-check as JSON")


def run(a) -> int:
    from ..exporters.adopt import adopt
    from .render import console, text

    r = adopt(a.model, a.spec_from)
    if a.json:
        print(json.dumps({"model": str(r.path), "spec": r.spec.to_dict(), "self_check": r.check.as_dict()}, indent=2))
        return 0
    con = console()
    now = r.spec.artifact.get("precision")
    change = f"{r.was} -> {now}" if r.was != now else now
    con.print("[green]adopted[/] " + text(f"{r.path} [{r.spec.artifact.get('format')}/{change}], made by {r.tool}; spec from "
                                          f"{r.spec_source}"), highlight=False)
    color = {"pass": "green", "fail": "red"}.get(r.check.status, "yellow")
    con.print(f"[{color}]{r.check.status.upper()}[/] {text(r.check)}", highlight=False)
    return 0
