"""MLflow ``metrics/get-history`` and ``metrics/get-history-bulk-interval``."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import StrictStr

from modelloop.entities import Metric
from modelloop.server.mlflow.convert import metric_json
from modelloop.server.mlflow.deps import StoreDep
from modelloop.server.mlflow.errors import MlflowError, MlflowRoute
from modelloop.server.mlflow.wire import Int64, Message, Required, RunMessage, message, ok

__all__ = ["MAX_HISTORY_PAGE", "MAX_RESULTS_PER_RUN", "MAX_RUNS_PER_BULK", "router", "sample_steps"]

router = APIRouter(prefix="/metrics", route_class=MlflowRoute)

MAX_HISTORY_PAGE = 25_000
MAX_RUNS_PER_BULK = 100
MAX_RESULTS_PER_RUN = 2500


class GetHistory(RunMessage):
    metric_key: Required
    page_token: StrictStr | None = None
    max_results: Int64 | None = None


class GetHistoryBulkInterval(Message):
    run_ids: list[StrictStr]
    metric_key: Required
    start_step: Int64 | None = None
    end_step: Int64 | None = None
    max_results: Int64 = MAX_RESULTS_PER_RUN


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit() or len(token) > 18:
        raise MlflowError(f"Invalid page token {token[:60]!r}")
    return int(token)


@router.get("/get-history")
def get_history(body: Annotated[GetHistory, message(GetHistory)], store: StoreDep) -> JSONResponse:
    """Every point of one metric of a run, by step (paged when ``max_results`` is given)."""
    points = store.get_metric_history(body.required_run_id(), body.metric_key)
    start = _offset(body.page_token)
    limit = len(points) if body.max_results is None else body.max_results
    if body.max_results is not None and not 1 <= limit <= MAX_HISTORY_PAGE:
        raise MlflowError(f"max_results must be between 1 and {MAX_HISTORY_PAGE}, got {limit}")
    page = points[start : start + limit]
    payload: dict[str, object] = {"metrics": [metric_json(m) for m in page]}
    if start + len(page) < len(points):
        payload["next_page_token"] = str(start + len(page))
    return ok(payload)


def sample_steps(
    histories: Sequence[Sequence[Metric]], start: int | None, end: int | None, max_results: int
) -> set[int]:
    """The steps the bulk-interval history returns, as MLflow samples them: at most about
    ``max_results`` of the steps logged in ``[start, end]``, evenly spread, plus the first
    and last step of each run within the range."""
    all_steps = sorted({m.step for h in histories for m in h})
    if start is None or end is None:
        start, end = 0, (all_steps[-1] if all_steps else 0)
    bounds = {s for h in histories if h for s in (h[0].step, h[-1].step) if start <= s <= end}
    lo = bisect.bisect_left(all_steps, start)
    hi = bisect.bisect_right(all_steps, end)
    if hi - lo <= max_results:
        return set(all_steps[lo:hi]) | bounds
    interval = (hi - lo) / max_results
    sampled = {all_steps[lo + math.floor(i * interval)] for i in range(max_results)}
    return sampled | {all_steps[hi - 1]} | bounds


@router.get("/get-history-bulk-interval")
def get_history_bulk_interval(
    body: Annotated[GetHistoryBulkInterval, message(GetHistoryBulkInterval)], store: StoreDep
) -> JSONResponse:
    """One metric of up to 100 runs, sampled to about ``max_results`` steps per run."""
    if not body.run_ids:
        raise MlflowError("Missing value for required parameter 'run_ids'.")
    if len(body.run_ids) > MAX_RUNS_PER_BULK:
        raise MlflowError(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_RUNS_PER_BULK} "
            f"run_ids. Received {len(body.run_ids)} run_ids."
        )
    if not 1 <= body.max_results <= MAX_RESULTS_PER_RUN:
        raise MlflowError(f"max_results must be between 1 and {MAX_RESULTS_PER_RUN}.")
    if (body.start_step is None) != (body.end_step is None):
        raise MlflowError("If either start step or end step are specified, both must be specified.")
    if (
        body.start_step is not None
        and body.end_step is not None
        and body.start_step > body.end_step
    ):
        raise MlflowError(
            "end_step must be greater than start_step. "
            f"Found start_step={body.start_step} and end_step={body.end_step}."
        )
    run_ids = [RunMessage(run_id=r).required_run_id() for r in body.run_ids]
    histories = [store.get_metric_history(r, body.metric_key) for r in run_ids]
    steps = sample_steps(histories, body.start_step, body.end_step, body.max_results)
    per_run = max(body.max_results, len(steps))
    out: list[dict[str, object]] = []
    for run_id, history in zip(run_ids, histories, strict=True):
        kept = [m for m in history if m.step in steps]
        if len(kept) > per_run:  # many points on few steps: spread the sample evenly
            stride = (len(kept) - 1) / (per_run - 1) if per_run > 1 else 0
            kept = [kept[round(i * stride)] for i in range(per_run)]
        out.extend(metric_json(m, run_id) for m in kept)
    return ok({"metrics": out})
