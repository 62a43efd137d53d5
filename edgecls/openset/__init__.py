"""Open-set rejection and drift references, fitted on validation images of an artifact (outside the device core).

    fit_reference("model_int8.onnx", "data/val")   # threshold for 95% coverage + drift reference -> the artifact's spec
    evaluate_ood("model.onnx", "data/val", ["ood/a", "ood/b"])   # AUROC, FPR at 95% TPR, rejection rate per set
"""

from .fit import evaluate_ood, fit_reference, fit_threshold, list_images, ood_report, reference_spec, restamp
from .metrics import auroc, fpr_at_tpr

__all__ = ["auroc", "evaluate_ood", "fit_reference", "fit_threshold", "fpr_at_tpr", "list_images", "ood_report",
           "reference_spec", "restamp"]
