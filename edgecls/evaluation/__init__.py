"""Scoring models on labelled data: multi-label metrics (average precision, F1, fitted thresholds, the paired mAP
budget) and the evaluation of an artifact on a manifest folder."""
