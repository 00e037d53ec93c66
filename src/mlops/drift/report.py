"""The drift report a person reads: one small, self-contained HTML page per drift run.

Built from a `DriftResult` alone (pydantic and the standard library: models_api renders it without
numpy). Safe to open from anywhere: no script, no external font, style, image or link to fetch
(the plots are inline SVG, the one stylesheet is inline and pinned by its hash in the page's
Content-Security-Policy), every text escaped (feature and category names come from users, so
control and invisible characters are replaced too), and no captured record, only shares.
"""

from __future__ import annotations

import base64
import hashlib
import math
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

from mlops.drift.result import DataQuality, Distribution, DriftMethod, DriftResult, DriftStatus, FeatureDrift
from mlops.quality.result import QualityResult, QualityStatus

_STYLE = (
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;"
    "padding:16px;color:#212529}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dee2e6}"
    "h3{font-size:15px;margin:0 0 2px;overflow-wrap:anywhere}"
    "table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}"
    "td,th{padding:3px 10px 3px 0;text-align:left;border-bottom:1px solid #f1f3f5;vertical-align:top}"
    "td.n,th.n{text-align:right}td{overflow-wrap:anywhere}"
    ".meta{color:#495057;margin:0 0 6px}.muted{color:#868e96}"
    ".verdict{font-size:18px;font-weight:600;padding:10px 12px;border-radius:6px;margin:12px 0}"
    ".bad{background:#fff5f5;color:#c92a2a}.ok{background:#ebfbee;color:#2b8a3e}.na{background:#f8f9fa;color:#495057}"
    ".tag{font-size:12px;font-weight:600;padding:1px 6px;border-radius:9px;white-space:nowrap}"
    ".tag.bad{border:1px solid #ffa8a8}.tag.ok{border:1px solid #8ce99a}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}"
    ".card{border:1px solid #dee2e6;border-radius:6px;padding:8px 10px}"
    ".sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin:0 4px 0 10px}"
    ".sb{background:#adb5bd}.sc{background:#1c7ed6}"
    "svg{display:block;max-width:100%;height:auto}svg text{font-size:10px;fill:#495057}"
    ".b{fill:#ced4da}.c{fill:#1c7ed6}.cl{fill:none;stroke:#1c7ed6;stroke-width:2}.ax{stroke:#adb5bd}"
    ".hit{fill:#000;fill-opacity:0}.hit:hover{fill-opacity:.05}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# In the page (meta) and, with `frame-ancestors` (which a meta tag cannot set), as the API's header.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; base-uri 'none'; form-action 'none'"
)
HEADER_CONTENT_SECURITY_POLICY = f"{CONTENT_SECURITY_POLICY}; frame-ancestors 'none'"

_METHOD_NAMES = {
    DriftMethod.KS: "Kolmogorov-Smirnov test",
    DriftMethod.CHI_SQUARE: "chi-square test",
    DriftMethod.WASSERSTEIN: "Wasserstein distance (normalised)",
    DriftMethod.JENSEN_SHANNON: "Jensen-Shannon distance",
    DriftMethod.PSI: "PSI",
}
_REGIMES = {
    "small": "small window: Kolmogorov-Smirnov and chi-square p-values",
    "large": "large window: Wasserstein and Jensen-Shannon distances",
}
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MAX_CATEGORY_ROWS = 12  # more categories are summed into one "other" row
_MAX_BINS = 40  # more numeric bins are merged, neighbours together, to keep a plot legible and small
_LABEL_CHARS = 22


def method_name(method: DriftMethod) -> str:
    return _METHOD_NAMES[method]


def decision_text(feature: FeatureDrift) -> str:
    """`0.183 > 0.1` or `p 0.41 >= 0.05`: the statistic against its threshold, the comparison
    taken from the recorded decision (so the words never contradict it)."""
    p_value = feature.method.gives_p_value
    below = feature.drifted if p_value else not feature.drifted
    sign = ("<" if feature.drifted else "<=") if below else (">" if feature.drifted else ">=")
    prefix = "p " if p_value else ""
    return f"{prefix}{number(feature.statistic)} {sign} {number(feature.threshold)}"


def number(value: float | None) -> str:
    """A statistic for people: 3 significant digits, tiny p-values in scientific notation."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value != 0 and abs(value) < 0.001:
        return f"{value:.2g}"  # 0.0004, 1.2e-30
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * 100:.1f}%"


def safe_text(value: object) -> str:
    """`value` as text with control and invisible characters (bidi overrides, zero-width) replaced."""
    text = str(value)
    if all(unicodedata.category(c) not in _UNSAFE_CATEGORIES for c in text):
        return text
    return "".join("\ufffd" if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text)


def _e(value: object) -> str:
    return escape(safe_text(value), quote=True)


def _when(at: datetime | None) -> str:
    return "n/a" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_html(result: DriftResult, live_quality: QualityResult | None = None) -> str:
    """The report page of one drift run (scored, or too small to judge: said plainly, nothing scored),
    with a live-quality section when a live-quality result of the same model is given."""
    title = f"Drift report: {result.model_name} v{result.version}, {_when(result.generated_at)}"
    parts = [_header(result)]
    if result.status is DriftStatus.INSUFFICIENT_DATA:
        parts.append(_insufficient(result))
        if _has_quality_facts(result.data_quality):
            parts.append(_data_quality(result.data_quality))
    else:
        parts += [_summary(result), _features(result), _prediction(result), _data_quality(result.data_quality)]
    if live_quality is not None:
        parts.append(_live_quality(live_quality))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>" + "".join(parts) + "</body></html>"
    )


def _header(result: DriftResult) -> str:
    window = result.window
    facts = [
        ("Model", f"{_e(result.model_name)} version {result.version}"),
        ("Status", _e(result.status.value.replace("_", " "))),
        ("Window", f"{window.rows:,} rows of this version (minimum to judge: {result.min_window_rows:,})"),
        (
            "Captured",
            f"{_e(_when(window.first_at))} to {_e(_when(window.last_at))}, {window.captures:,} capture objects",
        ),
        (
            "Not compared",
            f"{window.other_version_rows:,} rows of other versions, {window.unreadable_rows:,} unreadable",
        ),
        ("Tests", _e(_REGIMES.get(result.regime or "", "none (not scored)"))),
        ("Generated", _e(_when(result.generated_at))),
    ]
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    return f"<h1>Drift report: {_e(result.model_name)} v{result.version}</h1><table>{rows}</table>"


def _insufficient(result: DriftResult) -> str:
    return (
        '<p class="verdict na">Not enough data to judge drift: '
        f"{result.window.rows:,} rows in this window, {result.min_window_rows:,} needed. "
        "Nothing was scored.</p>"
    )


def _summary(result: DriftResult) -> str:
    drifted = [f for f in result.features if f.drifted]
    if result.drift_detected:
        what = [f"{len(drifted)} of {len(result.features)} features drifted"]
        if result.prediction is not None and result.prediction.drifted:
            what.append("the prediction drifted")
        verdict = f'<p class="verdict bad">Drift detected: {_e(", ".join(what))}</p>'
    else:
        verdict = '<p class="verdict ok">No drift detected</p>'
    items = []
    if result.dataset is not None:
        dataset = result.dataset
        reached = "reached: dataset drift" if dataset.drifted else "not reached"
        items.append(
            f"Dataset drift: {percent(dataset.share)} of features drifted; threshold {percent(dataset.threshold)} "
            f"({reached})"
        )
    if result.prediction is not None:
        items.append(
            f"Prediction drift: {'yes' if result.prediction.drifted else 'no'} ({_e(decision_text(result.prediction))})"
        )
    quality = result.data_quality
    items.append(
        "Data quality: "
        + (f'<span class="tag bad">alarm</span> {len(quality.issues)} issue(s)' if quality.alarm else "no alarm")
    )
    if result.drift_score is not None:
        items.append(f"Largest feature PSI: {number(result.drift_score)}")
    return verdict + "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _ordered(features: Sequence[FeatureDrift]) -> list[tuple[int, FeatureDrift]]:
    """Drifted features first, otherwise in the result's (contract) order; each with its anchor number."""
    numbered = list(enumerate(features))
    return sorted(numbered, key=lambda item: not item[1].drifted)


def _decision_tag(feature: FeatureDrift) -> str:
    return '<span class="tag bad">drifted</span>' if feature.drifted else '<span class="tag ok">no drift</span>'


def _feature_row(feature: FeatureDrift, anchor: str) -> str:
    return (
        f'<tr><td><a href="#{anchor}">{_e(feature.name)}</a></td><td>{feature.kind}</td>'
        f"<td>{_e(method_name(feature.method))}</td><td class=n>{number(feature.statistic)}</td>"
        f"<td class=n>{number(feature.threshold)}</td><td>{_decision_tag(feature)}</td>"
        f"<td class=n>{number(feature.psi)}</td><td class=n>{feature.rows:,}</td></tr>"
    )


_FEATURE_HEAD = (
    "<tr><th>Feature</th><th>Kind</th><th>Method</th><th class=n>Statistic</th><th class=n>Threshold</th>"
    "<th>Decision</th><th class=n>PSI</th><th class=n>Rows</th></tr>"
)
_LEGEND = '<p class="meta">Shares of non-null values:<span class="sw sb"></span>training baseline<span class="sw sc"></span>this window</p>'


_NO_DISTRIBUTION = '<p class="muted">No distribution recorded.</p>'


def _card(feature: FeatureDrift, anchor: str) -> str:
    meta = (
        f"{feature.kind} &middot; {_e(method_name(feature.method))} {_e(decision_text(feature))}"
        f" &middot; PSI {number(feature.psi)} &middot; {feature.rows:,} rows"
    )
    plot = (
        _plot(feature.distribution, feature.kind, feature.name)
        if feature.distribution is not None and feature.distribution.buckets
        else _NO_DISTRIBUTION
    )
    return (
        f'<section class="card" id="{anchor}"><h3>{_e(feature.name)} {_decision_tag(feature)}</h3>'
        f'<p class="meta">{meta}</p>{plot}</section>'
    )


def _features(result: DriftResult) -> str:
    ordered = _ordered(result.features)
    if not ordered:
        return "<h2>Features</h2><p>No feature was compared.</p>"
    table = "".join(_feature_row(f, f"f{i}") for i, f in ordered)
    cards = "".join(_card(f, f"f{i}") for i, f in ordered)
    return f"<h2>Features</h2><table>{_FEATURE_HEAD}{table}</table>{_LEGEND}<div class=grid>{cards}</div>"


def _prediction(result: DriftResult) -> str:
    if result.prediction is None:
        return "<h2>Prediction</h2><p>The prediction was not compared.</p>"
    prediction = result.prediction
    table = f"<table>{_FEATURE_HEAD}{_feature_row(prediction, 'pred')}</table>"
    return f"<h2>Prediction</h2>{table}<div class=grid>{_card(prediction, 'pred')}</div>"


def _live_quality(quality: QualityResult) -> str:
    """Live scores vs holdout of the production version, and how many labelled rows they rest on."""
    production = quality.production
    head = (
        f'<h2>Live quality (labelled traffic)</h2><p class="meta">Run {_when(quality.generated_at)}: version '
        f"{quality.version}, predictions answered since {_when(quality.window_start)} "
        f"({quality.window_hours:g} h); {quality.run.joined} labels joined this run, "
        f"{quality.run.unmatched} unmatched.</p>"
    )
    verdict = quality.verdict
    if quality.status is QualityStatus.INSUFFICIENT_DATA or verdict is None:
        rows = production.labelled_rows if production else 0
        return head + (f'<p class="verdict na">Not judged: {rows} labelled rows of at least {quality.min_labels}.</p>')
    if verdict.below:
        why = "below the contract minimum" if verdict.below_minimum else "more than the margin below the holdout score"
        line = f'<p class="verdict bad">Live {_e(verdict.metric)} {number(verdict.live)}: {why}.</p>'
    else:
        line = f'<p class="verdict ok">Live {_e(verdict.metric)} {number(verdict.live)}: within bounds.</p>'
    assert production is not None
    names = [name for name in production.metrics if name != "roc_auc_error_bound"]
    rows = [
        f"<tr><td>{_e(name)}</td><td class=n>{number(production.metrics[name])}</td>"
        f"<td class=n>{number(production.holdout.get(name))}</td></tr>"
        for name in names
    ]
    notes = [
        f"{production.labelled_rows} labelled rows ({production.unusable_rows} unusable)",
        f"minimum {number(verdict.minimum)}, margin {number(verdict.margin)}",
        f"F1: {_e(quality.f1_averaging)}",
    ]
    if "roc_auc_error_bound" in production.metrics:
        notes.append(
            f"ROC AUC from {quality.auc_bins} bins, within {number(production.metrics['roc_auc_error_bound'])}"
        )
    if production.label_drift_psi is not None:
        notes.append(
            f"label drift PSI {number(production.label_drift_psi)} (alarm above {number(quality.label_drift_threshold)})"
        )
    table = _table(["metric", "#live", "#holdout"], rows, "No score.")
    return head + line + table + f'<p class="muted">{"; ".join(notes)}.</p>'


def _has_quality_facts(quality: DataQuality) -> bool:
    return bool(quality.missing or quality.out_of_range or quality.rejections or quality.requests_rejected)


def _table(head: Iterable[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{empty}</p>'
    cells = "".join(f"<th{' class=n' if h.startswith('#') else ''}>{h.lstrip('#')}</th>" for h in head)
    return f"<table><tr>{cells}</tr>{''.join(rows)}</table>"


_SPIKE = '<span class="tag bad">spike</span>'
_BREACHED = '<span class="tag bad">breached</span>'
_ITALIC = ' font-style="italic"'


def _data_quality(quality: DataQuality) -> str:
    status = '<p class="verdict bad">Data-quality alarm</p>' if quality.alarm else "<p>No data-quality alarm.</p>"
    issues = "<ul>" + "".join(f"<li>{_e(issue)}</li>" for issue in quality.issues) + "</ul>" if quality.issues else ""
    missing = [
        f"<tr><td>{_e(m.name)}</td><td class=n>{percent(m.baseline_share)}</td><td class=n>{percent(m.current_share)}</td>"
        f"<td>{_SPIKE if m.spike else ''}</td></tr>"
        for m in quality.missing
    ]
    out_of_range = [
        f"<tr><td>{_e(o.name)}</td><td class=n>{percent(o.share)}</td><td class=n>{percent(o.threshold)}</td>"
        f"<td>{_BREACHED if o.breached else 'ok'}</td></tr>"
        for o in quality.out_of_range
    ]
    rejections = [
        f"<tr><td>{_e(r.field)}</td><td>{_e(r.reason.replace('_', ' '))}</td><td class=n>{r.count:,}</td></tr>"
        for r in sorted(quality.rejections, key=lambda r: -r.count)
    ]
    over = quality.rejected_share >= quality.rejected_share_threshold and quality.requests_rejected > 0
    rejected = (
        f"<p>Requests rejected (400): {quality.requests_rejected:,}, {percent(quality.rejected_share)} of requests "
        f"(threshold {percent(quality.rejected_share_threshold)})"
        + (' <span class="tag bad">over</span>' if over else "")
        + "</p>"
    )
    return (
        f"<h2>Data quality</h2>{status}{issues}<h3>Missing values</h3>"
        + _table(["Feature", "#Training", "#This window", ""], missing, "No missing values recorded.")
        + "<h3>Outside the training range</h3>"
        + _table(["Feature", "#Share outside", "#Threshold", ""], out_of_range, "No value outside the training range.")
        + f"<h3>Rejected requests</h3>{rejected}"
        + _table(["Field", "Reason", "#Count"], rejections, "No request was rejected.")
    )


# ---- plots: inline SVG, styled by the page's classes (no style attributes: the CSP allows none) ----


def _share(value: float) -> float:
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0


def _short(label: str, chars: int = _LABEL_CHARS) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "\u2026"


def _f(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _plot(distribution: Distribution, kind: str, name: str) -> str:
    triples = [
        (str(label), _share(b), _share(c))
        for label, b, c in zip(distribution.buckets, distribution.baseline, distribution.current, strict=False)
    ]
    if not triples:  # buckets without shares: nothing to draw
        return _NO_DISTRIBUTION
    if kind == "categorical":
        return _category_bars(triples, name)
    return _step_lines(_coarsen(triples), name)


def _coarsen(buckets: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """At most _MAX_BINS ordered buckets: runs of neighbours summed, labelled first to last."""
    if len(buckets) <= _MAX_BINS:
        return buckets
    size = math.ceil(len(buckets) / _MAX_BINS)
    runs = [buckets[i : i + size] for i in range(0, len(buckets), size)]
    return [(f"{run[0][0]} .. {run[-1][0]}", sum(t[1] for t in run), sum(t[2] for t in run)) for run in runs]


def _tip(label: str, baseline: float, current: float) -> str:
    return f"<title>{_e(label)}: baseline {percent(baseline)}, window {percent(current)}</title>"


def _step_lines(buckets: list[tuple[str, float, float]], name: str) -> str:
    """Ordered buckets (numeric bins): the baseline as a filled step area, the window as a step line."""
    width, height, left, right, top, bottom = 380, 130, 40, 8, 8, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([max(b, c) for _, b, c in buckets] + [1e-9]) * 1.1
    step = plot_w / len(buckets)
    base_y = top + plot_h

    def y(share: float) -> str:
        return _f(base_y - share / peak * plot_h)

    def steps(index: int) -> str:  # up to each bucket's share, across its width
        return "".join(f"V{y(t[index])}H{_f(left + (i + 1) * step)}" for i, t in enumerate(buckets))

    area = f'<path class="b" d="M{left},{base_y}{steps(1)}V{base_y}Z"/>'
    line = f'<path class="cl" d="M{left},{y(buckets[0][2])}{steps(2)}"/>'
    hits = "".join(
        f'<rect class="hit" x="{_f(left + i * step)}" y="{top}" width="{_f(step)}" height="{plot_h}">'
        f"{_tip(label, b, c)}</rect>"
        for i, (label, b, c) in enumerate(buckets)
    )
    first, last = buckets[0][0], buckets[-1][0]
    axes = (
        f'<path class="ax" d="M{left},{top}V{base_y}H{width - right}"/>'
        f'<text x="{left - 4}" y="{base_y}" text-anchor="end">0%</text>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{percent(peak)}</text>'
        f'<text x="{left}" y="{height - 14}">{_e(_short(first))}</text>'
        f'<text x="{width - right}" y="{height - 14}" text-anchor="end">{_e(_short(last))}</text>'
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 2}" text-anchor="middle">{len(buckets)} bins</text>'
    )
    label = f"{name}: baseline and window distributions over {len(buckets)} bins"
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{_e(label)}">'
        f"{area}{line}{axes}{hits}</svg>"
    )


def _category_bars(buckets: list[tuple[str, float, float]], name: str) -> str:
    """Categories as horizontal bar pairs, largest first; past the first few, one summed "other" row."""
    ranked = sorted(buckets, key=lambda t: -max(t[1], t[2]))
    shown = ranked if len(ranked) <= _MAX_CATEGORY_ROWS else ranked[: _MAX_CATEGORY_ROWS - 1]
    rest = ranked[len(shown) :]
    rows = [(label, b, c, False) for label, b, c in shown]
    if rest:
        others = (f"{len(rest)} other categories", sum(t[1] for t in rest), sum(t[2] for t in rest), True)
        rows.append(others)
    width, row_h, label_w, value_w = 380, 18, 130, 92
    bar_w = width - label_w - value_w
    peak = max([max(b, c) for _, b, c, _ in rows] + [1e-9])
    height = row_h * len(rows) + 4
    body = []
    for i, (label, b, c, other) in enumerate(rows):
        y = 2 + i * row_h
        text = _e(_short(label, 20))
        body.append(
            f'<g>{_tip(label, b, c)}<rect class="hit" x="0" y="{y}" width="{width}" height="{row_h}"/>'
            f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end"{_ITALIC if other else ""}>'
            f"{text}</text>"
            f'<rect class="b" x="{label_w}" y="{y + 2}" width="{_f(b / peak * bar_w)}" height="6"/>'
            f'<rect class="c" x="{label_w}" y="{y + 9}" width="{_f(c / peak * bar_w)}" height="6"/>'
            f'<text x="{width - 2}" y="{y + 12}" text-anchor="end">{percent(b)} \u2192 {percent(c)}</text></g>'
        )
    label = f"{name}: baseline and window shares of {len(buckets)} categories"
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{_e(label)}">'
        + "".join(body)
        + "</svg>"
    )
