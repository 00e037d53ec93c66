"""Metric names the quality function publishes and the template alarms on. One place.

Dimension {"model": name} (Powertools adds "service"). Scores are the production version's over
the window, published only when it had `monitoring.live_quality.min_labels` labelled rows.
"""

from __future__ import annotations

LIVE_ACCURACY = "LiveAccuracy"
LIVE_F1 = "LiveF1"  # binary: the contract's positive class; multiclass: macro
LIVE_ROC_AUC = "LiveRocAuc"
LIVE_LOG_LOSS = "LiveLogLoss"
LIVE_RMSE = "LiveRmse"
LIVE_MAE = "LiveMae"
LIVE_R2 = "LiveR2"
LABEL_DRIFT = "LabelDrift"  # PSI of the labels vs the training target
QUALITY_BELOW_MINIMUM = "QualityBelowMinimum"  # 1: below the contract minimum or the holdout margin
LABELLED_ROWS = "LabelledRows"  # production rows in the window
# every run
LABELS_JOINED = "LabelsJoined"
LABELS_UNMATCHED = "LabelsUnmatched"
LABELS_OTHER_VERSION = "LabelsOtherVersion"
LABELS_CONFLICTING = "LabelsConflicting"
QUALITY_CHECK_FAILURES = "QualityCheckFailures"

# live score name (QualitySketch.metrics) -> metric name
SCORE_METRICS = {
    "accuracy": LIVE_ACCURACY,
    "f1": LIVE_F1,
    "roc_auc": LIVE_ROC_AUC,
    "log_loss": LIVE_LOG_LOSS,
    "rmse": LIVE_RMSE,
    "mae": LIVE_MAE,
    "r2": LIVE_R2,
}
