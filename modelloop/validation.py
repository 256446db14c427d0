"""Checks on user input shared by every backend (MLflow's limits where they exist)."""

from __future__ import annotations

import functools
import math
import posixpath
import re
from numbers import Real
from typing import Any

from modelloop.entities import LifecycleStage, Metric, RunStatus
from modelloop.errors import InvalidArgument, InvalidState

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 256
MAX_RUN_NAME_LENGTH = 250
MAX_ARTIFACT_PATH_LENGTH = 1000
MAX_CONTEXT_LENGTH = 64
MAX_USER_LENGTH = 256

_KEY_RE = re.compile(r"^[/\w.\- :]*$")


def check_key(key: Any, what: str) -> str:
    """A metric, param or tag name: 1..250 chars of letters, digits, ``_ - . / : space``,
    and not a path that escapes or normalises to something else."""
    if isinstance(key, str):
        return _check_str_key(str(key), what)
    raise InvalidArgument(f"{what} name must be a string, got {type(key).__name__}")


# Keys repeat millions of times in a metric loop; only valid keys are cached
# (lru_cache does not cache a raised error).
@functools.lru_cache(maxsize=8192)
def _check_str_key(key: str, what: str) -> str:
    if not key:
        raise InvalidArgument(f"{what} name must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument(
            f"{what} name {key[:40]!r}... exceeds the maximum length of {MAX_KEY_LENGTH}"
        )
    if not _KEY_RE.match(key):
        raise InvalidArgument(
            f"invalid {what} name {key!r}: names may contain letters, digits, "
            "underscores, dashes, periods, spaces, colons and slashes"
        )
    if key.startswith("/") or posixpath.normpath(key) != key or ".." in key.split("/"):
        raise InvalidArgument(f"invalid {what} name {key!r}: it must be a relative, normal path")
    return key


def check_metric_value(key: str, value: Any) -> float:
    """A metric value: any real number (NaN and infinities included), not a bool or string."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        # numpy scalars are Real; strings and None are not.
        raise InvalidArgument(
            f"metric {key!r} value must be a number, got {type(value).__name__} {value!r:.60}",
            key=key,
        )
    return float(value)


def check_int(name: str, value: Any) -> int:
    """An integer argument (steps, timestamps)."""
    if type(value) is int and -(2**63) <= value < 2**63:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                return int(value)
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        raise InvalidArgument(
            f"{name} must be an integer, got {type(value).__name__} {value!r:.60}"
        )
    if not -(2**63) <= value < 2**63:
        raise InvalidArgument(f"{name} {value} does not fit in 64 bits")
    return value


def param_value(key: str, value: Any) -> str:
    """Params are stored as strings, truncated to 6000 characters as MLflow does."""
    if value is None:
        raise InvalidArgument(f"param {key!r} value must not be None", key=key)
    text = value if isinstance(value, str) else str(value)
    return _no_nul(text, f"param {key!r} value")[:MAX_PARAM_VALUE_LENGTH]


def tag_value(key: str, value: Any) -> str:
    """Tags are stored as strings, truncated to 8000 characters as MLflow does."""
    if value is None:
        raise InvalidArgument(f"tag {key!r} value must not be None", key=key)
    text = value if isinstance(value, str) else str(value)
    return _no_nul(text, f"tag {key!r} value")[:MAX_TAG_VALUE_LENGTH]


def check_limit(limit: Any) -> int | None:
    """An optional result-count limit: None, or an integer of at least 1."""
    if limit is None:
        return None
    value = check_int("limit", limit)
    if value < 1:
        raise InvalidArgument(f"limit must be at least 1, got {value}")
    return value


def check_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    """Tags as stored: each key checked, each value a (truncated) string."""
    return {check_key(k, "tag"): tag_value(k, val) for k, val in (tags or {}).items()}


def check_text(value: Any, what: str) -> str:
    """A free-text field (description, reason, ...): a string without NUL characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string")
    return _no_nul(value, what)


def check_name(value: Any, what: str, max_length: int) -> str:
    """A display name: a non-empty string of bounded length."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{what} must be a non-empty string, got {value!r:.60}")
    if len(value) > max_length:
        raise InvalidArgument(f"{what} exceeds the maximum length of {max_length}")
    return _no_nul(value, what)


def _no_nul(text: str, what: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it everywhere so both stores agree.
    if "\x00" in text:
        raise InvalidArgument(f"{what} must not contain NUL characters")
    return text


def check_artifact_path(path: Any) -> str:
    """A relative artifact path inside a run: no absolute paths, no ``..``, no backslashes."""
    if not isinstance(path, str):
        raise InvalidArgument(f"artifact path must be a string, got {type(path).__name__}")
    cleaned = path.strip("/")
    if not cleaned:
        raise InvalidArgument("artifact path must not be empty")
    if len(cleaned) > MAX_ARTIFACT_PATH_LENGTH:
        raise InvalidArgument(f"artifact path exceeds {MAX_ARTIFACT_PATH_LENGTH} characters")
    if (
        path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in cleaned.split("/"))
    ):
        raise InvalidArgument(f"invalid artifact path {path!r}: it must be a relative, normal path")
    return cleaned


def is_nan(value: float) -> bool:
    """True for NaN."""
    return math.isnan(value)


def check_metric(m: Metric) -> Metric:
    """A metric point with a valid key, a numeric value and integer step and timestamp.
    Returns ``m`` itself when it is already clean (no copy on the hot path)."""
    key = check_key(m.key, "metric")
    value = check_metric_value(key, m.value)
    timestamp = check_int("timestamp", m.timestamp)
    step = check_int("step", m.step)
    if key == m.key and value is m.value and timestamp is m.timestamp and step is m.step:
        return m
    return Metric(key, value, timestamp, step)


def check_writable(run_id: str, stage: str, status: str, *, allow_ended: bool = False) -> None:
    """Refuse new data for a deleted run, or (unless ``allow_ended``) an ended one."""
    if stage != LifecycleStage.ACTIVE.value:
        raise InvalidState(
            f"run {run_id} is deleted; restore it before logging to it", run_id=run_id
        )
    if not allow_ended and RunStatus(status).is_terminal:
        raise InvalidState(
            f"run {run_id} has ended ({status}); start a new run to log more", run_id=run_id
        )
