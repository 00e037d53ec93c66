"""The drift report page: every feature with its decision and plot, self-contained and safe to open
(no script, nothing fetched, every user text escaped), plain about a window too small to judge."""

from __future__ import annotations

import base64
import hashlib
import math
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.drift.report import CONTENT_SECURITY_POLICY, render_html
from mlops.drift.result import DataQuality, Distribution, DriftMethod, FeatureDrift, Rejection
from tests.support.drift import drift_result, feature_drift, insufficient_result

HOSTILE = "<img src=x onerror=alert(1)>"
VOID = {"meta", "br", "img", "input", "link", "hr", "path", "rect"}  # rect/path are self-closed in SVG


class _Page(HTMLParser):
    """Tags, attributes, text per element, and whether every element closes where it should."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.unbalanced: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self.style = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.unbalanced.append(tag)
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "style":
            self.style += data
            return
        self.text.append(data)
        if self.rows and "tr" in self.stack and data.strip():
            self.rows[-1].append(data.strip())


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert (page.unbalanced, page.stack) == ([], [])
    return page


def test_render_html_lists_each_feature_with_its_decision_and_numbers() -> None:
    # GIVEN a scored result of 6 features, two drifted, in the large-window regime
    result = drift_result(features=6, drifted=(0, 3))

    page = parse(render_html(result))

    # THEN each feature's row names it, its kind, method, statistic, threshold, decision and PSI
    feature_rows = [row for row in page.rows if len(row) == 8 and row[0].startswith("feature_")]
    rows = {row[0]: row for row in feature_rows}
    assert set(rows) == {f.name for f in result.features}
    for feature in result.features:
        row = rows[feature.name]
        assert row[1] == feature.kind
        assert row[2] == (
            "Wasserstein distance (normalised)" if feature.kind == "numeric" else "Jensen-Shannon distance"
        )
        assert (row[3], row[4]) == (("0.183", "0.1") if feature.drifted else ("0.021", "0.1"))
        assert row[5] == ("drifted" if feature.drifted else "no drift")
        assert row[6] == ("0.31" if feature.drifted else "0.012")
    # drifted features first, so a reader sees them without scrolling
    ordered = [row[0] for row in feature_rows]
    assert ordered[:2] == ["feature_00", "feature_03"]
    # the prediction has its own row
    assert ["prediction", "categorical", "Jensen-Shannon distance", "0.183", "0.1", "drifted", "0.31", "5,000"] in (
        page.rows
    )


def test_render_html_summarises_drift_dataset_share_and_data_quality() -> None:
    result = drift_result(features=6, drifted=(0, 3))

    text = " ".join(" ".join(parse(render_html(result)).text).split())

    assert "Drift detected: 2 of 6 features drifted, the prediction drifted" in text
    assert "Dataset drift: 33.3% of features drifted; threshold 50.0% (not reached)" in text
    assert "Prediction drift: yes (0.183 > 0.1)" in text
    assert "Data quality: alarm 1 issue(s)" in text
    assert "Model churn version 3" in text
    assert "5,000 rows of this version (minimum to judge: 100)" in text
    assert "2026-12-02 09:00:00 UTC to 2026-12-02 10:05:00 UTC" in text


def test_render_html_draws_one_svg_plot_per_feature_and_the_prediction() -> None:
    result = drift_result(features=7)

    page = parse(render_html(result))

    labels = [attrs["aria-label"] or "" for tag, attrs in page.tags if tag == "svg"]
    assert len(labels) == 7 + 1
    assert {label.split(":")[0] for label in labels} == {*(f.name for f in result.features), "prediction"}
    # numeric features are step lines over the bins; categorical ones are bar pairs
    assert sum("over 10 bins" in label for label in labels) == 5
    # every bucket's shares are in a tooltip
    assert "(-inf, -2.0]: baseline" in " ".join(page.text)


def test_render_html_words_p_values_and_distances_by_their_decision() -> None:
    result = drift_result(features=3, drifted=(0,), regime="small")

    html = render_html(result)

    assert "Kolmogorov-Smirnov test p 0.0004 &lt; 0.05" in html  # drifted: p below the threshold
    assert "chi-square test p 0.41 &gt;= 0.05" in html  # kept: p at or above it
    assert "small window: Kolmogorov-Smirnov and chi-square p-values" in html


def test_render_html_is_self_contained_and_pins_its_only_style() -> None:
    html = render_html(drift_result(features=10, levels=25))
    page = parse(html)

    assert "<script" not in html.lower()
    assert not re.search(r"https?://|//[a-z0-9]|url\(|@import", html, re.IGNORECASE)
    # nothing a browser would fetch: no src, no external href, no link/img/iframe/object
    for tag, attrs in page.tags:
        assert tag not in {"script", "link", "img", "iframe", "object", "embed", "base", "form"}, tag
        assert not {"src", "style"} & set(attrs), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if "href" in attrs:
            assert (attrs["href"] or "").startswith("#"), attrs
    [csp] = [attrs["content"] for tag, attrs in page.tags if tag == "meta" and attrs.get("http-equiv")]
    assert csp == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    digest = base64.b64encode(hashlib.sha256(page.style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp  # the inline stylesheet is the one the policy allows


def test_render_html_escapes_hostile_names_categories_and_issues() -> None:
    # GIVEN user-chosen names carrying markup and a right-to-left override
    hostile_category = feature_drift(HOSTILE, kind="categorical", drifted=True, levels=3)
    distribution = Distribution(
        buckets=['"><script>alert(2)</script>', "a\u202eb", "plain"], baseline=[0.2, 0.3, 0.5], current=[0.5, 0.3, 0.2]
    )
    hostile_category = hostile_category.model_copy(update={"distribution": distribution})
    result = drift_result(features=2).model_copy(
        update={
            "features": [hostile_category, feature_drift("ok")],
            "data_quality": DataQuality(
                rejections=[Rejection(field=HOSTILE, reason="<b>wrong_type</b>", count=3)],
                requests_rejected=3,
                issues=[f"{HOSTILE} has 31% missing values"],
                alarm=True,
            ),
        }
    )

    html = render_html(result)
    page = parse(html)

    assert "<img" not in html
    assert "<script" not in html
    assert "<b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\u202e" not in html  # invisible/bidi characters never reach the page
    assert {tag for tag, _ in page.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "table", "tr", "th", "td", "p", "ul",
        "li", "span", "a", "section", "div", "svg", "path", "rect", "text", "g",
    }  # fmt: skip
    assert HOSTILE in " ".join(page.text)  # shown to the reader as text


def test_render_html_says_plainly_when_the_window_is_too_small_and_scores_nothing() -> None:
    html = render_html(insufficient_result(rows=37))
    page = parse(html)
    text = " ".join(" ".join(page.text).split())

    assert "Not enough data to judge drift: 37 rows in this window, 100 needed. Nothing was scored" in text
    assert "insufficient data" in text
    assert "<svg" not in html
    assert "Features" not in text
    assert "drifted" not in text
    assert "Drift detected" not in text
    assert "No drift" not in text


def test_render_html_keeps_many_categories_readable_and_the_page_small() -> None:
    # GIVEN 30 features, every third categorical with 30 levels
    result = drift_result(features=30, levels=30, drifted=(0, 2, 5))

    html = render_html(result)

    assert len(html.encode()) < 200_000
    page = parse(html)
    # a categorical plot shows the 11 largest categories and one summed row for the rest
    assert "19 other categories" in " ".join(page.text)
    categorical = [a["aria-label"] for t, a in page.tags if t == "svg" and "30 categories" in (a["aria-label"] or "")]
    assert len(categorical) == 10


def test_render_html_survives_non_finite_and_empty_parts() -> None:
    broken = FeatureDrift(
        name="odd",
        kind="numeric",
        method=DriftMethod.WASSERSTEIN,
        statistic=math.nan,
        threshold=0.1,
        drifted=False,
        psi=math.inf,
        distribution=Distribution(buckets=["a", "b"], baseline=[math.nan, 1.0], current=[0.5, math.inf]),
    )
    empty = broken.model_copy(update={"name": "empty", "distribution": None})
    lopsided = broken.model_copy(
        update={"name": "lopsided", "distribution": Distribution(buckets=["a", "b"], baseline=[], current=[])}
    )
    result = drift_result(features=2).model_copy(update={"features": [broken, empty, lopsided], "prediction": None})

    page = parse(render_html(result))
    text = " ".join(page.text)

    assert "odd" in text
    assert "n/a" in text
    assert "No distribution recorded." in text
    assert "The prediction was not compared." in text


@pytest.mark.parametrize("features", [1, 20])
def test_render_html_measures(features: int) -> None:
    """Size of a report (the brief's figure): 20 features of which 6 categorical with 30 levels."""
    size = len(render_html(drift_result(features=features, levels=30)).encode())
    assert size < 200_000


def test_render_html_merges_neighbouring_bins_past_forty() -> None:
    many = feature_drift("fine", bins=200, drifted=True)
    result = drift_result(features=2).model_copy(update={"features": [many]})

    page = parse(render_html(result))

    [label] = [a["aria-label"] for t, a in page.tags if t == "svg" and (a["aria-label"] or "").startswith("fine")]
    assert label == "fine: baseline and window distributions over 40 bins"
    assert "(-inf, -2.0] .. " in " ".join(page.text)  # a merged bin names its first and last


_floats = st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 1)
_distributions = st.builds(
    Distribution,
    buckets=st.lists(st.text(max_size=30), max_size=60),
    baseline=st.lists(_floats, max_size=60),
    current=st.lists(_floats, max_size=60),
)
_features = st.builds(
    FeatureDrift,
    name=st.text(max_size=40),
    kind=st.sampled_from(["numeric", "categorical"]),
    method=st.sampled_from(list(DriftMethod)),
    statistic=_floats,
    threshold=_floats,
    drifted=st.booleans(),
    psi=st.none() | _floats,
    rows=st.integers(0, 10**9),
    distribution=st.none() | _distributions,
)


@settings(max_examples=150, deadline=None)
@given(features=st.lists(_features, max_size=8), prediction=st.none() | _features, scored=st.booleans())
def test_render_html_renders_any_result_without_leaking_markup(
    features: list[FeatureDrift], prediction: FeatureDrift | None, scored: bool
) -> None:
    base = drift_result(features=1) if scored else insufficient_result()
    result = base.model_copy(update={"features": features, "prediction": prediction})

    page = parse(render_html(result))

    assert {tag for tag, _ in page.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "table", "tr", "th", "td", "p", "ul",
        "li", "span", "a", "section", "div", "svg", "path", "rect", "text", "g",
    }  # fmt: skip
