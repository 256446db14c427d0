"""The monitoring report: a self-contained HTML page and the same data as JSON."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelloop.errors import InvalidArgument
from modelloop.monitoring import data_quality, dataset_drift
from modelloop.monitoring.report import REPORT_FORMAT, ReportData, render_html, render_json
from modelloop.monitoring.summary import Histogram, SummarySpec, WindowSummary, histogram_pair

EVIL = "<script>alert('x')</script>"
HOUR_MS = 3_600_000
START_MS = 1_789_999_200_000  # 2026-09-21 14:00 UTC


class _Page(HTMLParser):
    """Collects the tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)

    def attrs(self, tag: str, name: str) -> list[str]:
        return [a[name] or "" for t, a in self.tags if t == tag and name in a]


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _frames(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "plan": rng.choice(
                ["basic", "plus", "pro"], n, p=[0.6 - 0.3 * shift, 0.3, 0.1 + 0.3 * shift]
            ),
            EVIL: rng.integers(0, 3, n),
            "signup": np.datetime64("2026-01-01", "ns")
            + (rng.random(n) * 86_400e9 * 30).astype("timedelta64[ns]"),
        }
    )


def _report(n_windows: int = 6) -> tuple[ReportData, list[str]]:
    """A report built the way a monitor builds one: windows summarised and merged."""
    reference = _frames(3000, seed=0, shift=0.0)
    spec = SummarySpec.fit(reference)
    ref_summary = spec.summarise(reference)
    windows: list[WindowSummary] = []
    share_points: list[tuple[int, float | None]] = []
    age_points: list[tuple[int, float | None]] = []
    accuracy: list[tuple[int, float | None]] = []
    for i in range(n_windows):
        frame = _frames(1500, seed=i + 1, shift=i / max(n_windows - 1, 1))
        start = START_MS + i * HOUR_MS
        windows.append(spec.summarise(frame, start_ms=start, end_ms=start + HOUR_MS))
        drift = dataset_drift(reference, frame)
        share_points.append((start + HOUR_MS, drift.share_drifted))
        age_points.append((start + HOUR_MS, drift.columns["age"].value))
        accuracy.append((start + HOUR_MS, None if i == 2 else 0.9 - 0.02 * i))
    history: dict[str, list[tuple[int, float | None]]] = {
        "dataset_drift_share": share_points,
        "drift_score[age]": age_points,
        "accuracy": accuracy,
    }
    latest = _frames(1500, seed=n_windows, shift=1.0)
    merged = WindowSummary.merge(windows)
    columns = list(reference.columns)
    data = ReportData(
        monitor=f"churn-monitor {EVIL}",
        deployment="churn",
        reference="churn-ref",
        generated_ms=START_MS + n_windows * HOUR_MS + 5,
        window={"start_ms": merged.start_ms, "end_ms": merged.end_ms, "rows": merged.rows},
        drift=dataset_drift(reference, latest).to_dict(),
        prediction_drift=None,
        quality=data_quality(reference, latest.drop(columns=["income"])).to_dict(),
        performance={"accuracy": 0.81, "f1": float("nan")},
        histograms={c: histogram_pair(ref_summary, merged, c) for c in columns},
        history=history,
        alerts=[
            {
                "id": 1,
                "rule": "drift",
                "severity": "warning",
                "state": "resolved",
                "fired_ms": START_MS,
                "resolved_ms": START_MS + HOUR_MS,
                "value": 0.4,
            },
            {
                "id": 2,
                "rule": f"rule {EVIL}",
                "severity": "critical",
                "state": "firing",
                "fired_ms": START_MS + 2 * HOUR_MS,
                "resolved_ms": None,
                "value": float("inf"),
            },
        ],
    )
    return data, columns


def test_html_report_is_self_contained_and_complete() -> None:
    data, columns = _report()
    html = render_html(data)
    page = _parse(html)
    # No external resource of any kind: no URL in src/href, no script, no URL at all.
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "action"):
            value = attrs.get(name)
            assert value is None or not re.match(r"\s*(https?:)?//", value), (tag, value)
    assert "http://" not in html
    assert "https://" not in html
    assert page.count("script") == 0
    assert page.count("link") == 0
    assert page.count("img") == 0
    # One histogram chart per column, each an inline SVG with bars for both samples.
    assert sorted(page.attrs("figure", "data-column")) == sorted(columns)
    assert sorted(page.attrs("figure", "data-metric")) == sorted(data.history)
    assert page.count("svg") == len(columns) + len(data.history)
    assert page.attrs("rect", "class").count("ref") >= len(columns)
    assert page.attrs("rect", "class").count("cur") >= len(columns)
    # The accuracy history has a gap (None) and is drawn in two pieces.
    assert page.count("polyline") == 1 + 1 + 2
    # Threshold lines: dataset drift share and the age drift score.
    assert page.attrs("line", "class").count("threshold") == 2
    text = "".join(page.text)
    assert "2026-09-21 14:00 UTC" in text  # UTC time axis and window
    assert "Drift detected" in text or "No drift" in text


def test_user_text_is_escaped() -> None:
    data, _ = _report(3)
    html = render_html(data)
    assert EVIL not in html
    assert "&lt;script&gt;" in html
    assert _parse(html).count("script") == 0
    page = _parse(html)
    # The escaped name still reaches the page as text and as the chart's attribute.
    assert EVIL in page.attrs("figure", "data-column")
    assert any(EVIL in t for t in page.text)


def test_drift_table_lists_drifted_columns_first() -> None:
    data, _ = _report()
    html = render_html(data)
    section = html[html.index('id="drift"') : html.index('id="prediction-drift"')]
    rows = re.findall(r"<tr( class=\"drifted\")?><td>(.*?)</td>", section)
    drift = data.drift or {}
    drifted = [name for name, col in drift["columns"].items() if col["drifted"]]
    assert drifted, "the latest window is shifted, something must drift"
    flags = [bool(flag) for flag, _ in rows]
    assert flags == sorted(flags, reverse=True)
    assert sum(flags) == len(drifted)
    assert len(rows) == len(drift["columns"])
    # The firing alert comes first and is highlighted.
    alerts = html[html.index('id="alerts"') : html.index('id="drift"')]
    assert alerts.index('class="firing"') < alerts.index("resolved</td>")


def test_json_report_round_trips() -> None:
    data, columns = _report()
    obj = render_json(data)
    text = json.dumps(obj, allow_nan=False)
    assert obj["format"] == REPORT_FORMAT
    again = json.loads(text)
    assert again == obj
    assert again["performance"] == {"accuracy": 0.81, "f1": None}
    assert again["alerts"][1]["value"] is None
    assert set(again["histograms"]) == set(columns)
    assert again["history"]["accuracy"][2] == [START_MS + 3 * HOUR_MS, None]
    rebuilt = ReportData.from_json(again)
    assert render_json(rebuilt) == obj
    assert render_html(rebuilt) == render_html(data)
    for name, (ref, cur) in rebuilt.histograms.items():
        assert isinstance(ref, Histogram)
        assert ref == data.histograms[name][0]
        assert cur == data.histograms[name][1]


def test_empty_report_renders() -> None:
    data = ReportData(monitor="new-monitor")
    html = render_html(data)
    page = _parse(html)
    assert page.count("svg") == 0
    text = "".join(page.text)
    for note in (
        "no window scored yet",
        "No drift computed yet",
        "No performance yet",
        "No alerts",
    ):
        assert note in text
    obj = render_json(data)
    json.dumps(obj, allow_nan=False)
    assert obj["window"] is None
    assert obj["histograms"] == {}
    # Pieces with nothing inside: empty histograms and a history of missing values.
    sparse = ReportData(
        monitor="m",
        histograms={"x": (Histogram("numeric", ()), Histogram("numeric", ()))},
        history={"accuracy": [(START_MS, None)], "drift_score[x]": []},
        window={"start_ms": None, "end_ms": None, "rows": 0},
    )
    html = render_html(sparse)
    assert "No values to draw." in html
    assert html.count("No values yet.") == 2


def test_report_for_a_hundred_columns_stays_small() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    reference = pd.DataFrame({f"c{i}": rng.normal(0, 1, n) for i in range(100)})
    current = pd.DataFrame({f"c{i}": rng.normal(0.1 * (i % 3), 1, n) for i in range(100)})
    spec = SummarySpec.fit(reference)
    ref, cur = spec.summarise(reference), spec.summarise(current)
    times = [START_MS + i * HOUR_MS for i in range(24 * 30)]
    data = ReportData(
        monitor="wide",
        window={"start_ms": times[0], "end_ms": times[-1], "rows": n},
        drift=dataset_drift(reference, current).to_dict(),
        histograms={c: histogram_pair(ref, cur, c) for c in reference.columns},
        history={
            f"drift_score[c{i}]": [(t, float(rng.random())) for t in times] for i in range(100)
        },
    )
    html = render_html(data)
    assert len(html.encode()) < 3_000_000
    page = _parse(html)
    assert page.count("figure") == 200
    # A month of hourly points is thinned to at most 500 per line, without markers.
    longest = max(len(p.split()) for p in page.attrs("polyline", "points"))
    assert 100 < longest <= 501
    assert page.count("circle") == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"histograms": {"x": (Histogram("numeric", ()),)}},
        {"history": {"accuracy": [(1, 2, 3)]}},
    ],
)
def test_malformed_pieces_raise_invalid_argument(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        render_html(ReportData(monitor="m", **bad))
    with pytest.raises(InvalidArgument):
        render_json(ReportData(monitor="m", **bad))


def test_from_json_refuses_other_documents() -> None:
    with pytest.raises(InvalidArgument, match="not a monitoring report"):
        ReportData.from_json({"monitor": "m"})
    with pytest.raises(InvalidArgument, match="malformed"):
        ReportData.from_json({"format": REPORT_FORMAT, "monitor": "m", "history": {"a": [1]}})


def test_compare_frames_reports_two_data_frames_without_a_store() -> None:
    from modelloop.monitoring import compare_frames, render_json, render_report_html

    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b"], 3000), "gone": 1.0}
    )
    current = pd.DataFrame({"x": rng.normal(1, 1, 800), "c": rng.choice(["a", "b"], 800)})
    data = compare_frames(reference, current, name="before-vs-after")
    page = render_report_html(data)
    assert "before-vs-after" in page and "https://" not in page
    obj = json.loads(json.dumps(render_json(data), allow_nan=False))
    assert obj["drift"]["columns"]["x"]["drifted"] is True
    assert obj["drift"]["columns"]["c"]["drifted"] is False
    assert obj["drift"]["columns"]["gone"]["status"] == "not enough data"
    assert obj["quality"]["missing_columns"] == ["gone"]
    assert sum(obj["histograms"]["x"]["current"]["counts"]) == pytest.approx(800)
