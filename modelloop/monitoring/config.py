"""A monitor's configuration: its window, the compared columns and tests, the target,
the alert rules and the webhook, validated once when the monitor is created."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

from modelloop.errors import InvalidArgument
from modelloop.monitoring.column_types import validate_column_type
from modelloop.monitoring.stattests import get_stattest

__all__ = ["MonitorConfig", "WindowSpec", "check_webhook", "parse_window", "resolve_webhook"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_ROWS = re.compile(r"^\s*(\d+)\s*(?:rows?)?\s*$")
_KEYS = {
    "window",
    "columns",
    "column_types",
    "stattests",
    "thresholds",
    "drift_share",
    "target",
    "model_type",
    "rules",
    "webhook",
    "grace_seconds",
    "start_time",
    "label_delay_seconds",
}


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    """Windows of ``seconds`` of traffic (aligned to the epoch, so ``1d`` is a UTC
    day) or of ``rows`` logged prediction rows."""

    kind: Literal["time", "rows"]
    size: int

    def to_dict(self) -> dict[str, Any]:
        """The stored form."""
        return {"kind": self.kind, "size": self.size}

    def __str__(self) -> str:
        if self.kind == "rows":
            return f"{self.size} rows"
        for unit in ("w", "d", "h", "m"):
            if self.size % _UNITS[unit] == 0:
                return f"{self.size // _UNITS[unit]}{unit}"
        return f"{self.size}s"


def parse_window(value: Any) -> WindowSpec:
    """``"1h"``, ``"15m"``, ``"1d"``, ``"500 rows"`` (or ``500``), or a stored dict."""
    if isinstance(value, WindowSpec):
        return value
    if isinstance(value, Mapping):
        kind, size = value.get("kind"), value.get("size")
        if kind not in ("time", "rows") or not isinstance(size, int) or size < 1:
            raise InvalidArgument(f"invalid window {dict(value)!r}")
        return WindowSpec(kind, size)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        if m := _DURATION.match(value):
            seconds = int(m.group(1)) * _UNITS[m.group(2)]
            if seconds >= 60:
                return WindowSpec("time", seconds)
            raise InvalidArgument(f"window {value!r} is shorter than a minute")
        if (m := _ROWS.match(value)) and int(m.group(1)) >= 1:
            return WindowSpec("rows", int(m.group(1)))
    raise InvalidArgument(
        f"invalid window {value!r}: use a duration such as 15m, 1h, 1d or a row count "
        "such as '1000 rows'"
    )


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgument(f"{what} must be a list of column names")
    return list(value)


def _str_map(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidArgument(f"{what} must map column names to values")
    return dict(value)


_ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


def check_webhook(url: Any) -> str:
    """An http(s) URL with a host, or ``env:NAME``: the URL is then read from the
    environment variable NAME of the process that delivers, so a secret URL is never
    stored (anyone who can read the monitor can read a stored one)."""
    if isinstance(url, str) and _ENV_REF.match(url):
        return url
    from modelloop.monitoring.webhook import check_url

    try:
        return check_url(url)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{exc.message} (or name a variable: env:VARIABLE)") from None


def resolve_webhook(value: str, environ: Mapping[str, str]) -> str:
    """The URL a stored webhook names (``env:NAME`` looked up in ``environ``)."""
    match = _ENV_REF.match(value)
    if match is None:
        return value
    url = environ.get(match.group(1))
    if not url:
        raise InvalidArgument(
            f"the monitor's webhook is read from ${match.group(1)}, which is not set here"
        )
    from modelloop.monitoring.webhook import check_url

    return check_url(url)


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """Everything a monitor needs besides its deployment and reference dataset.

    ``columns`` defaults to the reference's columns except ``target``;
    ``column_types``/``stattests``/``thresholds`` override per column (``thresholds``
    may be ``"learned"``); ``target`` names the reference's ground-truth column and
    turns on performance once feedback arrives; ``rules`` are alert rules (see
    :mod:`modelloop.monitoring.rules`); ``webhook`` receives alert events;
    ``grace_seconds`` is how long after a time window's end late log files may still
    arrive before the window is scored; ``start_time`` (ms) skips older logs;
    ``label_delay_seconds`` > 0 computes a (time) window's realised performance that
    long after its end, in a later run, so labels that come late still count.
    """

    window: WindowSpec = WindowSpec("time", 3600)
    columns: list[str] | None = None
    column_types: dict[str, str] = dataclasses.field(default_factory=dict)
    stattests: dict[str, str] = dataclasses.field(default_factory=dict)
    thresholds: dict[str, float] | Literal["learned"] = dataclasses.field(default_factory=dict)
    drift_share: float = 0.5
    target: str | None = None
    model_type: Literal["classifier", "regressor"] | None = None
    rules: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    webhook: str | None = None
    grace_seconds: int = 60
    start_time: int | None = None
    label_delay_seconds: int = 0

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> MonitorConfig:
        """Validate a config mapping (unknown keys and bad values are refused by name)."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise InvalidArgument(f"unknown monitor settings: {', '.join(unknown)}")
        out: dict[str, Any] = {}
        if "window" in raw:
            out["window"] = parse_window(raw["window"])
        if raw.get("columns") is not None:
            out["columns"] = _str_list(raw["columns"], "columns")
        types = _str_map(raw.get("column_types") or {}, "column_types")
        out["column_types"] = {k: validate_column_type(t, k) for k, t in types.items()}
        tests = _str_map(raw.get("stattests") or {}, "stattests")
        for column, name in tests.items():
            if not isinstance(name, str):
                raise InvalidArgument(f"stattest for {column!r} must be a test name")
            get_stattest(name)  # raises InvalidArgument for an unknown test
        out["stattests"] = tests
        thresholds = raw.get("thresholds") or {}
        if thresholds != "learned":
            thresholds = _str_map(thresholds, "thresholds")
            for column, value in thresholds.items():
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InvalidArgument(f"threshold for {column!r} must be a number")
            thresholds = {k: float(v) for k, v in thresholds.items()}
        out["thresholds"] = thresholds
        if "drift_share" in raw:
            share = raw["drift_share"]
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
                raise InvalidArgument(f"drift_share must be in (0, 1], got {share!r}")
            out["drift_share"] = float(share)
        if raw.get("target") is not None:
            if not isinstance(raw["target"], str) or not raw["target"]:
                raise InvalidArgument("target must be a column name")
            out["target"] = raw["target"]
        if raw.get("model_type") is not None:
            if raw["model_type"] not in ("classifier", "regressor"):
                raise InvalidArgument("model_type must be 'classifier' or 'regressor'")
            out["model_type"] = raw["model_type"]
        if raw.get("rules"):
            from modelloop.monitoring.rules import load_rules

            out["rules"] = [rule.to_dict() for rule in load_rules(raw["rules"])]
        if raw.get("webhook") is not None:
            out["webhook"] = check_webhook(raw["webhook"])
        for key in ("grace_seconds", "start_time", "label_delay_seconds"):
            if raw.get(key) is not None:
                value = raw[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidArgument(f"{key} must be a non-negative integer")
                out[key] = value
        config = cls(**out)
        if config.label_delay_seconds and config.window.kind != "time":
            raise InvalidArgument("label_delay_seconds needs time windows (e.g. window 1h)")
        return config

    def to_dict(self) -> dict[str, Any]:
        """The stored (JSON) form."""
        out = dataclasses.asdict(self)
        out["window"] = self.window.to_dict()
        return out
