"""modelloop entities <-> MLflow's JSON messages.

MLflow keeps a run's name, owner and parent in *system tags*; modelloop stores
them as fields of the run. The mapping is explicit and goes both ways:

========================  =========================
MLflow system tag          modelloop ``Run`` field
========================  =========================
``mlflow.runName``         ``name``
``mlflow.user``            ``user``
``mlflow.parentRunId``     ``parent_run_id``
========================  =========================

On the way in these tags are taken out of the tags and set as fields
(:func:`split_system_tags`); on the way out they are made from the fields
(:func:`system_tags`), so they are never stored twice and cannot disagree.

Artifacts are always served by this server's proxy: an experiment's
``artifact_location`` is ``mlflow-artifacts:/<experiment_id>`` and a run's
``artifact_uri`` ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from modelloop.entities import Dataset, DatasetInput, Experiment, Metric, Run

__all__ = [
    "CONTEXT_TAG",
    "DEFAULT_CONTEXT",
    "PARENT_RUN_ID_TAG",
    "RUN_NAME_TAG",
    "SYSTEM_TAGS",
    "USER_TAG",
    "SystemFields",
    "dataset_input_from_json",
    "double",
    "experiment_artifact_location",
    "experiment_json",
    "metric_json",
    "run_artifact_uri",
    "run_info_json",
    "run_json",
    "split_system_tags",
    "system_tags",
    "tags_json",
]

RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
PARENT_RUN_ID_TAG = "mlflow.parentRunId"
SYSTEM_TAGS = (RUN_NAME_TAG, USER_TAG, PARENT_RUN_ID_TAG)

#: The tag of a dataset input naming its context (``train``, ``eval``, ...).
CONTEXT_TAG = "mlflow.data.context"
#: modelloop needs a context; an MLflow dataset input logged without one gets this.
DEFAULT_CONTEXT = "unspecified"


@dataclasses.dataclass(frozen=True, slots=True)
class SystemFields:
    """The run fields carried by MLflow system tags in a request (None: not given)."""

    name: str | None = None
    user: str | None = None
    parent_run_id: str | None = None


def split_system_tags(tags: Mapping[str, str]) -> tuple[dict[str, str], SystemFields]:
    """``tags`` without the system tags, and the run fields those tags set."""
    plain = {k: v for k, v in tags.items() if k not in SYSTEM_TAGS}
    fields = SystemFields(
        name=tags.get(RUN_NAME_TAG),
        user=tags.get(USER_TAG),
        parent_run_id=tags.get(PARENT_RUN_ID_TAG),
    )
    return plain, fields


def system_tags(run: Run) -> dict[str, str]:
    """The system tags MLflow would store for ``run``, made from its fields."""
    tags = {RUN_NAME_TAG: run.name, USER_TAG: run.user}
    if run.parent_run_id:
        tags[PARENT_RUN_ID_TAG] = run.parent_run_id
    return tags


def double(value: float) -> float | str:
    """A double as proto3 JSON writes it: non-finite values as strings."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def tags_json(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """Tags (or params) as MLflow's list of ``{key, value}``."""
    return [{"key": k, "value": v} for k, v in tags.items()]


def experiment_artifact_location(experiment_id: str) -> str:
    """Where MLflow clients put an experiment's artifacts: this server's proxy."""
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(experiment_id: str, run_id: str) -> str:
    """A run's artifact root as MLflow clients see it (served by the proxy)."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def experiment_json(exp: Experiment) -> dict[str, Any]:
    """An MLflow ``Experiment``."""
    out: dict[str, Any] = {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": experiment_artifact_location(exp.experiment_id),
        "lifecycle_stage": exp.lifecycle_stage.value,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
    }
    if exp.tags:
        out["tags"] = tags_json(exp.tags)
    return out


def metric_json(m: Metric, run_id: str | None = None) -> dict[str, Any]:
    """An MLflow ``Metric`` (with ``run_id`` for the bulk-interval history)."""
    out: dict[str, Any] = {
        "key": m.key,
        "value": double(m.value),
        "timestamp": m.timestamp,
        "step": m.step,
    }
    if run_id is not None:
        out["run_id"] = run_id
    return out


def run_info_json(run: Run) -> dict[str, Any]:
    """An MLflow ``RunInfo`` (``run_uuid`` duplicates ``run_id`` for old clients)."""
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.user,
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": run_artifact_uri(run.experiment_id, run.run_id),
        "lifecycle_stage": run.lifecycle_stage.value,
    }
    if run.end_time is not None:
        out["end_time"] = run.end_time
    return out


def _dataset_json(ds: Dataset) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": ds.name,
        "digest": ds.digest,
        "source_type": ds.source_type,
        "source": ds.source,
    }
    if ds.schema:
        columns = [{"type": t, "name": n} for n, t in ds.schema.items()]
        out["schema"] = json.dumps({"mlflow_colspec": columns})
    if ds.num_rows is not None:
        out["profile"] = json.dumps({"num_rows": ds.num_rows})
    return out


def run_json(run: Run, latest: Iterable[Metric] | None = None) -> dict[str, Any]:
    """An MLflow ``Run``: ``info``, ``data`` (latest metrics, params, tags with the
    system tags) and ``inputs``. ``latest`` gives the metrics' steps and timestamps;
    without it they come from ``run.metrics`` with step 0 at the run's start."""
    if latest is None:
        latest = [Metric(k, v, run.start_time, 0) for k, v in run.metrics.items()]
    data: dict[str, Any] = {
        "metrics": [metric_json(m) for m in latest],
        "params": tags_json(run.params),
        "tags": tags_json({**run.tags, **system_tags(run)}),
    }
    inputs = [
        {"tags": [{"key": CONTEXT_TAG, "value": i.context}], "dataset": _dataset_json(i.dataset)}
        for i in run.inputs
    ]
    return {
        "info": run_info_json(run),
        "data": {k: v for k, v in data.items() if v},
        "inputs": {"dataset_inputs": inputs} if inputs else {},
        "outputs": {},
    }


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dataset_input_from_json(
    name: str,
    digest: str,
    source_type: str,
    source: str,
    schema: str,
    profile: str,
    tags: Mapping[str, str],
) -> DatasetInput:
    """A modelloop dataset input from MLflow's ``DatasetInput`` fields. MLflow's column
    spec becomes modelloop's column -> type schema and its ``num_rows`` the row count;
    other schema kinds (tensor specs) and profile entries are not kept."""
    columns = _json_object(schema).get("mlflow_colspec")
    schema_map: dict[str, str] = {}
    if isinstance(columns, list):
        for i, col in enumerate(columns):
            if isinstance(col, dict):
                schema_map[str(col.get("name", f"column_{i}"))] = str(col.get("type", ""))
    rows = _json_object(profile).get("num_rows")
    return DatasetInput(
        Dataset(
            digest=digest,
            name=name,
            source=source,
            source_type=source_type,
            num_rows=rows if type(rows) is int else None,
            schema=schema_map,
            profile={},
        ),
        tags.get(CONTEXT_TAG) or DEFAULT_CONTEXT,
    )
