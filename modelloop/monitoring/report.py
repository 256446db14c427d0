"""The monitoring report: one self-contained HTML page, and the same data as JSON.

:class:`ReportData` gathers what a monitor knows about its newest (or a chosen)
window: drift per column, prediction drift, data quality, performance, reference
versus current histograms (from :mod:`modelloop.monitoring.summary`), the history
of every stored metric and the alerts. :func:`render_html` lays it out with the
Jinja2 templates in ``templates/``: inline CSS, charts as inline SVG drawn here, no
script and no external resource, every user-supplied text escaped. Missing pieces
(no window yet, no labels, no alerts) render as a short note, never as an error.
:func:`render_json` gives machines the same content, JSON-serialisable with
``allow_nan=False`` (NaN and infinities become ``None``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from modelloop.errors import InvalidArgument
from modelloop.monitoring.summary import Histogram

__all__ = ["REPORT_FORMAT", "ReportData", "render_html", "render_json"]

REPORT_FORMAT = "modelloop.monitoring.report/1"
_TEMPLATES = Path(__file__).parent / "templates"
_DASH = "—"
# A history chart draws at most this many points (evenly strided beyond it), and
# marks each point (with a tooltip) only up to _MAX_MARKERS, so a long history or a
# hundred columns keep the page at a few MB.
_MAX_POINTS = 500
_MAX_MARKERS = 120
_MAX_LABELLED_BARS = 12

HistogramLike = Histogram | Mapping[str, Any]


@dataclasses.dataclass
class ReportData:
    """Everything one report shows; every piece but ``monitor`` may be missing.

    ``window`` has ``start_ms``, ``end_ms`` and ``rows``. ``drift`` and
    ``prediction_drift`` are :meth:`DatasetDrift.to_dict` outputs, ``quality`` a
    :meth:`DataQuality.to_dict` output, ``performance`` metric name -> value.
    ``histograms`` maps a column to its (reference, current) :class:`Histogram` pair
    (or their dicts); ``history`` maps a metric name (``dataset_drift_share``,
    ``drift_score[age]``, ``accuracy``, ...) to ``(window_end_ms, value)`` points;
    ``thresholds`` adds a threshold line to a history chart (drift scores and the
    dataset drift share get theirs from ``drift``). ``alerts`` are dicts with ``id``,
    ``rule``, ``severity``, ``state`` (firing/resolved), ``fired_ms``, ``resolved_ms``
    and ``value``.
    """

    monitor: str
    deployment: str = ""
    reference: str = ""
    generated_ms: int | None = None
    window: Mapping[str, Any] | None = None
    drift: Mapping[str, Any] | None = None
    prediction_drift: Mapping[str, Any] | None = None
    quality: Mapping[str, Any] | None = None
    performance: Mapping[str, float] | None = None
    histograms: Mapping[str, tuple[HistogramLike, HistogramLike]] = dataclasses.field(
        default_factory=dict
    )
    history: Mapping[str, Sequence[tuple[int, float | None]]] = dataclasses.field(
        default_factory=dict
    )
    alerts: Sequence[Mapping[str, Any]] = dataclasses.field(default_factory=list)
    thresholds: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportData:
        """Rebuild the data from :func:`render_json`'s output."""
        if not isinstance(data, Mapping) or data.get("format") != REPORT_FORMAT:
            raise InvalidArgument(f"not a monitoring report (expected format {REPORT_FORMAT})")
        try:
            histograms = {
                name: (Histogram.from_dict(pair["reference"]), Histogram.from_dict(pair["current"]))
                for name, pair in (data.get("histograms") or {}).items()
            }
            history = {
                name: [(int(t), v) for t, v in points]
                for name, points in (data.get("history") or {}).items()
            }
            return cls(
                monitor=str(data["monitor"]),
                deployment=str(data.get("deployment") or ""),
                reference=str(data.get("reference") or ""),
                generated_ms=data.get("generated_ms"),
                window=data.get("window"),
                drift=data.get("drift"),
                prediction_drift=data.get("prediction_drift"),
                quality=data.get("quality"),
                performance=data.get("performance"),
                histograms=histograms,
                history=history,
                alerts=list(data.get("alerts") or []),
                thresholds=dict(data.get("thresholds") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"malformed monitoring report: {exc!r}") from exc


# --- JSON ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-native copy: NaN/inf -> None, numpy scalars and arrays -> Python."""
    if isinstance(value, Histogram):
        return _plain(value.to_dict())
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def _histogram(value: HistogramLike) -> Histogram:
    return value if isinstance(value, Histogram) else Histogram.from_dict(value)


def render_json(data: ReportData) -> dict[str, Any]:
    """The report as a JSON-serialisable dict (``json.dumps(..., allow_nan=False)``
    works); :meth:`ReportData.from_json` reads it back."""
    _check(data)
    return {
        "format": REPORT_FORMAT,
        "monitor": data.monitor,
        "deployment": data.deployment,
        "reference": data.reference,
        "generated_ms": _plain(data.generated_ms),
        "window": _plain(data.window),
        "drift": _plain(data.drift),
        "prediction_drift": _plain(data.prediction_drift),
        "quality": _plain(data.quality),
        "performance": _plain(data.performance),
        "histograms": {
            str(name): {"reference": _plain(_histogram(r)), "current": _plain(_histogram(c))}
            for name, (r, c) in data.histograms.items()
        },
        "history": {
            str(name): [[_plain(t), _plain(v)] for t, v in points]
            for name, points in data.history.items()
        },
        "alerts": _plain(list(data.alerts)),
        "thresholds": _plain(data.thresholds),
    }


def _check(data: ReportData) -> None:
    if not isinstance(data, ReportData):
        raise InvalidArgument("render needs a ReportData")
    for name, pair in data.histograms.items():
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidArgument(f"histograms[{name!r}] must be a (reference, current) pair")
    for name, points in data.history.items():
        for point in points:
            if not isinstance(point, Sequence) or len(point) != 2:
                raise InvalidArgument(f"history[{name!r}] must hold (time_ms, value) pairs")


# --- formatting ----------------------------------------------------------------------------


def _number(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, str):
        return _DASH if value in (None, "") else str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    number = float(value)
    if not math.isfinite(number):
        return _DASH
    if 1e3 <= abs(number) < 1e9:  # thousands read better grouped than as 1.235e+04
        return f"{number:,.0f}"
    return f"{number:.{digits}g}"


def _share(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return _DASH
    return f"{100 * value:.1f}%"


def _time(ms: Any, with_seconds: bool = False) -> str:
    if not isinstance(ms, int | float) or isinstance(ms, bool) or not math.isfinite(ms):
        return _DASH
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M") + " UTC"


def _edge_label(value: float, datetime_like: bool) -> str:
    if datetime_like:
        return _time(value / 1e6)  # datetime columns are binned in ns since the epoch
    return _number(value, 3)


# --- chart geometry (drawn by the templates) -----------------------------------------------

_W, _H = 360, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 8, 10, 38


def _histogram_chart(
    name: str, ref: Histogram, cur: Histogram, datetime_like: bool
) -> dict[str, Any]:
    """Side-by-side bars of reference and current shares, with axis labels."""
    ref_shares, cur_shares = list(ref.shares), list(cur.shares)
    n = max(len(ref_shares), len(cur_shares))
    ref_shares += [0.0] * (n - len(ref_shares))
    cur_shares += [0.0] * (n - len(cur_shares))
    labels: list[str]
    if ref.kind == "categorical":
        labels = [str(c) for c in (ref.categories or cur.categories)]
        if ref.other or cur.other:
            labels.append("other")
            ref_shares.append(ref.other / ref.total if ref.total else 0.0)
            cur_shares.append(cur.other / cur.total if cur.total else 0.0)
            n += 1
    else:
        edges = ref.edges or cur.edges
        labels = [
            f"[{_edge_label(edges[i], datetime_like)}, {_edge_label(edges[i + 1], datetime_like)})"
            for i in range(min(n, len(edges) - 1))
        ]
    labels += [""] * (n - len(labels))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    top = max([*ref_shares, *cur_shares, 0.0]) or 1.0
    slot = plot_w / n if n else plot_w
    bars = []
    for i in range(n):
        x = _LEFT + i * slot
        for offset, share, css in ((0.1, ref_shares[i], "ref"), (0.5, cur_shares[i], "cur")):
            height = plot_h * share / top
            bars.append(
                {
                    "x": round(x + offset * slot, 2),
                    "y": round(_TOP + plot_h - height, 2),
                    "w": round(max(slot * 0.4, 0.5), 2),
                    "h": round(height, 2),
                    "css": css,
                }
            )
    tips = [
        f"{labels[i]}: reference {_share(ref_shares[i])}, current {_share(cur_shares[i])}"
        for i in range(n)
    ]
    x_labels: list[dict[str, Any]] = []
    if ref.kind == "categorical" and n <= _MAX_LABELLED_BARS:
        x_labels = [
            {
                "x": round(_LEFT + (i + 0.5) * slot, 2),
                "text": _clip(labels[i], 10),
                "anchor": "middle",
            }
            for i in range(n)
        ]
    elif ref.kind == "numeric" and (ref.edges or cur.edges):
        edges = ref.edges or cur.edges
        x_labels = [
            {"x": _LEFT, "text": _edge_label(edges[0], datetime_like), "anchor": "start"},
            {"x": _W - _RIGHT, "text": _edge_label(edges[-1], datetime_like), "anchor": "end"},
        ]
    return {
        "column": name,
        "width": _W,
        "height": _H,
        "bars": bars,
        "slots": [
            {"x": round(_LEFT + i * slot, 2), "w": round(slot, 2), "tip": tips[i]} for i in range(n)
        ],
        "x_labels": x_labels,
        "y_max": _share(top),
        "axis": {"x0": _LEFT, "x1": _W - _RIGHT, "y0": _TOP, "y1": _TOP + plot_h},
        "empty": n == 0,
        "ref_rows": _number(ref.total),
        "cur_rows": _number(cur.total),
    }


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


_LW, _LH = 720, 170
_LLEFT, _LRIGHT, _LTOP, _LBOTTOM = 56, 16, 12, 30


def _line_chart(
    metric: str, points: Sequence[tuple[int, float | None]], threshold: float | None
) -> dict[str, Any]:
    """A metric's history over time (UTC axis), gaps where a value is missing."""
    clean = sorted(
        (float(t), None if v is None or not math.isfinite(float(v)) else float(v))
        for t, v in points
        if isinstance(t, int | float) and math.isfinite(float(t))
    )
    if len(clean) > _MAX_POINTS:
        step = math.ceil(len(clean) / _MAX_POINTS)
        clean = clean[::step] + ([clean[-1]] if (len(clean) - 1) % step else [])
    values = [v for _, v in clean if v is not None]
    chart: dict[str, Any] = {"metric": metric, "width": _LW, "height": _LH, "empty": not values}
    if not values:
        return chart
    lo, hi = min(values), max(values)
    if threshold is not None and math.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    lo = min(lo, 0.0) if lo >= 0 and hi > 0 and lo < 0.25 * hi else lo
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    t0, t1 = clean[0][0], clean[-1][0]
    span = (t1 - t0) or 1.0
    plot_w, plot_h = _LW - _LLEFT - _LRIGHT, _LH - _LTOP - _LBOTTOM

    def xy(t: float, v: float) -> tuple[float, float]:
        x = _LLEFT + (plot_w * (t - t0) / span if t1 > t0 else plot_w / 2)
        return round(x, 2), round(_LTOP + plot_h * (hi - v) / (hi - lo), 2)

    segments: list[str] = []
    current: list[str] = []
    for t, v in clean:
        if v is None:
            if current:
                segments.append(" ".join(current))
            current = []
            continue
        x, y = xy(t, v)
        current.append(f"{x},{y}")
    if current:
        segments.append(" ".join(current))
    markers = []
    if len(values) <= _MAX_MARKERS:
        for t, v in clean:
            if v is not None:
                x, y = xy(t, v)
                markers.append({"x": x, "y": y, "tip": f"{_time(t, True)}: {_number(v, 6)}"})
    chart |= {
        "segments": segments,
        "markers": markers,
        "axis": {"x0": _LLEFT, "x1": _LW - _LRIGHT, "y0": _LTOP, "y1": _LTOP + plot_h},
        "y_labels": [
            {"y": _LTOP, "text": _number(hi, 3)},
            {"y": _LTOP + plot_h, "text": _number(lo, 3)},
        ],
        "x_labels": [
            {"x": _LLEFT, "text": _time(t0), "anchor": "start"},
            {"x": _LW - _LRIGHT, "text": _time(t1), "anchor": "end"},
        ],
        "threshold": None
        if threshold is None or not math.isfinite(threshold)
        else {"y": xy(t0, threshold)[1], "text": f"threshold {_number(threshold, 3)}"},
        "last": _number(values[-1], 4),
    }
    return chart


# --- page ----------------------------------------------------------------------------------


def _drift_rows(drift: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    columns = (drift or {}).get("columns") or {}
    rows = []
    for name, col in columns.items():
        col = col if isinstance(col, Mapping) else {}
        status = col.get("status", "ok")
        drifted = bool(col.get("drifted"))
        verdict = "drift" if drifted else ("no drift" if status == "ok" else str(status))
        rows.append(
            {
                "column": str(col.get("column", name)),
                "type": col.get("column_type") or _DASH,
                "test": col.get("stattest") or _DASH,
                "kind": "p-value" if col.get("kind") == "p_value" else "distance",
                "value": _number(col.get("value")),
                "threshold": _number(col.get("threshold")),
                "verdict": verdict,
                "drifted": drifted,
            }
        )
    rows.sort(key=lambda r: (not r["drifted"], r["verdict"] != "no drift"))
    return rows


def _drift_summary(drift: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not drift:
        return None
    return {
        "verdict": bool(drift.get("dataset_drift")),
        "share": _share(drift.get("share_drifted")),
        "n_drifted": _number(drift.get("n_drifted")),
        "n_tested": _number(drift.get("n_tested")),
        "drift_share": _share(drift.get("drift_share")),
    }


def _quality_rows(quality: Mapping[str, Any] | None) -> list[list[str]]:
    rows = []
    for name, col in ((quality or {}).get("columns") or {}).items():
        col = col if isinstance(col, Mapping) else {}
        rows.append(
            [
                str(col.get("column", name)),
                str(col.get("column_type") or _DASH),
                _share(col.get("missing_share")),
                _share(col.get("reference_missing_share")),
                _share(col.get("new_category_share")),
                ", ".join(str(c) for c in col.get("new_categories") or ()) or _DASH,
                _share(col.get("out_of_range_share")),
                _number(col.get("constant")),
            ]
        )
    return rows


def _alert_rows(alerts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = [
        {
            "id": _number(a.get("id")),
            "rule": str(a.get("rule") or _DASH),
            "severity": str(a.get("severity") or _DASH),
            "state": str(a.get("state") or _DASH),
            "fired": _time(a.get("fired_ms")),
            "resolved": _time(a.get("resolved_ms")),
            "value": _number(a.get("value")),
            "firing": a.get("state") == "firing",
        }
        for a in alerts
        if isinstance(a, Mapping)
    ]
    rows.sort(key=lambda r: not r["firing"])
    return rows


def _threshold_for(metric: str, data: ReportData) -> float | None:
    if metric in data.thresholds:
        return float(data.thresholds[metric])
    drift = data.drift or {}
    if metric == "dataset_drift_share":
        share = drift.get("drift_share")
        return float(share) if isinstance(share, int | float) else None
    if metric.startswith("drift_score[") and metric.endswith("]"):
        col = ((drift.get("columns") or {}).get(metric[12:-1])) or {}
        value = col.get("threshold") if isinstance(col, Mapping) else None
        return float(value) if isinstance(value, int | float) else None
    return None


def _column_types(data: ReportData) -> dict[str, str]:
    types: dict[str, str] = {}
    for source in (data.quality, data.prediction_drift, data.drift):
        for name, col in ((source or {}).get("columns") or {}).items():
            if isinstance(col, Mapping) and col.get("column_type"):
                types[str(name)] = str(col["column_type"])
    return types


@cache
def _jinja() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG; no script, no
    external resource; all user text escaped)."""
    _check(data)
    types = _column_types(data)
    histograms = [
        _histogram_chart(
            str(name), _histogram(r), _histogram(c), types.get(str(name)) == "datetime"
        )
        for name, (r, c) in data.histograms.items()
    ]
    history = [
        _line_chart(str(metric), points, _threshold_for(str(metric), data))
        for metric, points in data.history.items()
    ]
    window = data.window or {}
    context = {
        "title": f"Monitoring report: {data.monitor}",
        "data": data,
        "generated": _time(data.generated_ms, True),
        "window": None
        if not window
        else {
            "start": _time(window.get("start_ms")),
            "end": _time(window.get("end_ms")),
            "rows": _number(window.get("rows")),
        },
        "drift": _drift_summary(data.drift),
        "drift_rows": _drift_rows(data.drift),
        "prediction": _drift_summary(data.prediction_drift),
        "prediction_rows": _drift_rows(data.prediction_drift),
        "quality": data.quality,
        "quality_rows": _quality_rows(data.quality),
        "quality_missing": ", ".join(map(str, (data.quality or {}).get("missing_columns") or ())),
        "quality_extra": ", ".join(map(str, (data.quality or {}).get("extra_columns") or ())),
        "signature_share": _share((data.quality or {}).get("signature_violation_share")),
        "performance": [(str(k), _number(v)) for k, v in sorted((data.performance or {}).items())],
        "histograms": histograms,
        "history": history,
        "alerts": _alert_rows(data.alerts),
        "empty": _DASH,
    }
    return _jinja().get_template("monitoring_report.html.j2").render(**context)
