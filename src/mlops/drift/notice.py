"""The notification a drift run sends when it finds drift or a data-quality problem: plain text that
names the model, the version, what drifted and by how much, the data-quality issues, and the link
to the report. Aggregates only (statistics, shares, counts), never a captured value.

SNS takes a subject of ASCII characters, no control characters, under 100 characters: the subject
names the model (an ASCII name by the contract's rule) and counts, never a feature; the body names
the features.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlops.drift.report import decision_text, method_name, number, percent, safe_text
from mlops.drift.result import DataQuality, DriftResult, FeatureDrift

SUBJECT_LIMIT = 99  # SNS: "must be less than 100 characters"
MAX_LISTED = 25  # drifted features and rejections listed in the body; the report has the rest


def needs_notice(result: DriftResult) -> bool:
    """A run is announced when it found drift or raised a data-quality alarm."""
    return result.drift_detected or result.data_quality.alarm


def drift_notice(result: DriftResult, *, report_link: str | None) -> tuple[str, str]:
    """(subject, body) for the alarm topic."""
    return _subject(result), _body(result, report_link)


def _ascii(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _subject(result: DriftResult) -> str:
    drifted = [f for f in result.features if f.drifted]
    findings = []
    if drifted:
        findings.append(f"{len(drifted)} of {len(result.features)} features drifted")
    if result.prediction is not None and result.prediction.drifted:
        findings.append("prediction drifted")
    if result.data_quality.alarm:
        findings.append("data-quality alarm")
    kind = "Drift" if result.drift_detected else "Data quality" if result.data_quality.alarm else "Drift check"
    subject = f"{kind}: {result.model_name} v{result.version}"
    if findings:
        subject += " - " + ", ".join(findings)
    subject = _ascii(subject)
    return subject if len(subject) <= SUBJECT_LIMIT else subject[: SUBJECT_LIMIT - 3] + "..."


def _feature_line(feature: FeatureDrift) -> str:
    psi = f"; PSI {number(feature.psi)}" if feature.psi is not None else ""
    return (
        f"- {safe_text(feature.name)} ({feature.kind}): {method_name(feature.method)} {decision_text(feature)}"
        f"{psi}; {feature.rows:,} values compared"
    )


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M}"


def _window(result: DriftResult) -> str:
    window = result.window
    if window.first_at is None or window.last_at is None:
        return f"{window.rows:,} rows"
    span = f"{_utc(window.first_at)} to {_utc(window.last_at)} UTC"
    return f"{window.rows:,} rows captured {span}"


def _listed(lines: list[str], what: str) -> list[str]:
    """At most MAX_LISTED lines, then how many more the report has."""
    extra = [f"- and {len(lines) - MAX_LISTED} more {what} (see the report)"] if len(lines) > MAX_LISTED else []
    return lines[:MAX_LISTED] + extra


def _quality_lines(quality: DataQuality) -> list[str]:
    spikes = [
        f"- {safe_text(m.name)}: missing values {percent(m.current_share)} in this window, "
        f"{percent(m.baseline_share)} in training (spike)"
        for m in quality.missing
        if m.spike
    ]
    breaches = [
        f"- {safe_text(o.name)}: {percent(o.share)} of values outside the training range (threshold {percent(o.threshold)})"
        for o in quality.out_of_range
        if o.breached
    ]
    lines = _listed(spikes, "missing-value spikes") + _listed(breaches, "out-of-range features")
    if quality.requests_rejected:
        lines.append(
            f"- requests rejected: {quality.requests_rejected:,}, {percent(quality.rejected_share)} of requests "
            f"(threshold {percent(quality.rejected_share_threshold)})"
        )
        ranked = sorted(quality.rejections, key=lambda r: -r.count)
        lines += [
            f"  - {safe_text(r.field)}: {safe_text(r.reason).replace('_', ' ')} x {r.count:,}"
            for r in ranked[:MAX_LISTED]
        ]
        if len(ranked) > MAX_LISTED:
            lines.append(f"  - and {len(ranked) - MAX_LISTED} more field/reason pairs (see the report)")
    if not lines:  # an alarm the structured rows do not explain: say what the check said
        lines = [f"- {safe_text(issue)}" for issue in quality.issues]
    return lines


def _body(result: DriftResult, report_link: str | None) -> str:
    name, version = result.model_name, result.version
    drifted = [f for f in result.features if f.drifted]
    found = "drift detected" if result.drift_detected else "no drift"
    if result.data_quality.alarm:
        found += " and a data-quality alarm" if result.drift_detected else ", but a data-quality alarm"
    lines = [
        f"Model {name}, version {version}: {found}.",
        f"Window: {_window(result)}; generated {_utc(result.generated_at)} UTC.",
        "",
    ]
    if result.dataset is not None:
        dataset = result.dataset
        reached = "dataset drift" if dataset.drifted else "below the dataset drift threshold"
        lines.append(
            f"Drifted features: {len(drifted)} of {len(result.features)} ({percent(dataset.share)}; "
            f"threshold {percent(dataset.threshold)}: {reached})"
        )
    elif drifted:
        lines.append(f"Drifted features: {len(drifted)} of {len(result.features)}")
    lines += _listed([_feature_line(f) for f in drifted], "drifted features")
    if result.prediction is not None:
        prediction = result.prediction
        state = "drifted" if prediction.drifted else "no drift"
        lines.append(
            f"Prediction: {state}, {method_name(prediction.method)} {decision_text(prediction)}"
            + (f"; PSI {number(prediction.psi)}" if prediction.psi is not None else "")
        )
    if result.data_quality.alarm:
        lines += ["", "Data quality:", *_quality_lines(result.data_quality)]
    if report_link:
        lines += [
            "",
            f"Report: {report_link}",
            "(served by the models API to IAM-signed requests: reader role or above)",
        ]
    else:
        lines += ["", "Report: no link for this run (see the model's drift history in the models API)"]
    return "\n".join(lines) + "\n"
