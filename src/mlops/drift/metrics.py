"""Metric names the drift function and predict publish and the template alarms on. One place."""

from __future__ import annotations

# detect_drift, dimension {"model": name} (Powertools adds "service")
DRIFT_DETECTED = "DriftDetected"  # 1 when a feature or the prediction drifted in a scored window, else 0
DRIFTED_FEATURE_SHARE = "DriftedFeatureShare"  # drifted features / features compared
PREDICTION_DRIFT = "PredictionDrift"  # 1 when the prediction distribution drifted, else 0
DRIFT_SCORE = "DriftScore"  # the largest feature PSI (kept for continuity)
DRIFT_WINDOW_ROWS = "DriftWindowRows"
DATA_QUALITY_ISSUES = "DataQualityIssues"  # problems found (missing spike, out of range, rejections)
CAPTURES_LATE = "CapturesLate"  # capture objects that landed after their window was closed
DRIFT_CHECK_FAILURES = "DriftCheckFailures"  # a model whose check failed this run

# predict, dimension {"model": name}
CAPTURE_RECORDS_WRITTEN = "CaptureRecordsWritten"
CAPTURE_RECORDS_DROPPED = "CaptureRecordsDropped"
CAPTURE_RECORDS_SKIPPED = "CaptureRecordsSkipped"
