"""Lineage (version -> run -> datasets, code, environment) and the model card,
assembled from what the registry and the tracking store know."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelloop.errors import NotFound
from modelloop.registry.promotion import PromotionMixin

if TYPE_CHECKING:
    from modelloop.entities import Run
    from modelloop.registry.card import ModelCard

__all__ = ["LineageMixin"]

_GIT_DIFF = "_modelloop/git.diff"
_REQUIREMENTS = "_modelloop/requirements.txt"


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


class LineageMixin(PromotionMixin):
    """``lineage`` and ``model_card`` of :class:`~modelloop.Client`."""

    def lineage(self, name: str, version: int | str) -> dict[str, Any]:
        """A version's lineage as data: the version, the run that made it, the run's
        input datasets (by digest), the code (git commit, branch, dirty diff), the
        environment, the pipeline run when there is one, and its evaluations."""
        mv = self._backend.get_model_version(name, version)
        graph: dict[str, Any] = {
            "model_version": {
                "name": mv.name,
                "version": mv.version,
                "uri": mv.uri,
                "source": mv.source,
                "flavor": mv.flavor,
                "size_bytes": mv.size_bytes,
                "created": _iso(mv.creation_time),
                "created_by": mv.user_id,
                "aliases": list(mv.aliases),
                "stage": mv.stage,
            },
            "run": None,
            "datasets": [],
            "code": None,
            "environment": None,
            "pipeline_run": None,
            "evaluations": [],
        }
        run = self._run_or_none(mv.run_id)
        if run is not None:
            graph["run"] = {
                "run_id": run.run_id,
                "name": run.name,
                "experiment_id": run.experiment_id,
                "experiment": self._experiment_name(run.experiment_id),
                "status": run.status.value,
                "user": run.user,
                "start": _iso(run.start_time),
                "end": _iso(run.end_time),
                "params": dict(run.params),
                "metrics": dict(run.metrics),
            }
            graph["datasets"] = [
                {
                    "name": i.dataset.name,
                    "digest": i.dataset.digest,
                    "context": i.context,
                    "rows": i.dataset.num_rows,
                    "source": i.dataset.source,
                }
                for i in run.inputs
            ]
            graph["code"] = self._code(run)
            graph["environment"] = self._environment(run)
            graph["pipeline_run"] = run.tags.get("modelloop.pipeline_run_id")
        graph["evaluations"] = [
            {
                "id": e.id,
                "run_id": e.run_id,
                "dataset": e.dataset_name,
                "digest": e.dataset_digest,
                "time": _iso(e.time),
                "metrics": e.result.get("metrics", {}),
                "slices": e.result.get("slices", {}),
            }
            for e in self._backend.list_evaluations(mv.name, mv.version)
        ]
        return graph

    def _run_or_none(self, run_id: str | None) -> Run | None:
        if run_id is None:
            return None
        try:
            return self._backend.get_run(run_id)
        except NotFound:
            return None

    def _experiment_name(self, experiment_id: str) -> str | None:
        try:
            return self._backend.get_experiment(experiment_id).name
        except NotFound:
            return None

    def _artifact_text(self, run_id: str, path: str, limit: int = 200_000) -> str | None:
        try:
            with self._backend.open_artifact(run_id, path) as fh:
                return fh.read(limit).decode(errors="replace")
        except NotFound:
            return None

    def _code(self, run: Run) -> dict[str, Any] | None:
        commit = run.tags.get("modelloop.git.commit")
        if commit is None:
            return None
        dirty = run.tags.get("modelloop.git.dirty") == "true"
        return {
            "git_commit": commit,
            "git_branch": run.tags.get("modelloop.git.branch"),
            "git_dirty": dirty,
            "git_diff": self._artifact_text(run.run_id, _GIT_DIFF) if dirty else None,
        }

    def _environment(self, run: Run) -> dict[str, Any] | None:
        python = run.tags.get("modelloop.python")
        requirements = self._artifact_text(run.run_id, _REQUIREMENTS)
        if python is None and requirements is None:
            return None
        return {
            "python": python,
            "platform": run.tags.get("modelloop.platform"),
            "packages": [
                line for line in (requirements or "").splitlines() if line and line[0] != "#"
            ],
        }

    # model card ---------------------------------------------------------------

    def model_card(self, name: str, version: int | str) -> ModelCard:
        """The model card's content, gathered from the registry and the run."""
        from modelloop.registry.card import ModelCard

        model = self._backend.get_registered_model(name)
        mv = self._backend.get_model_version(name, version)
        graph = self.lineage(name, mv.version)
        run = graph["run"] or {}
        code = graph["code"] or {}
        env = graph["environment"] or {}
        requirements: list[str] = []
        with contextlib.suppress(NotFound):
            requirements = list(self.read_model_manifest(mv.uri).requirements)
        environment = {"python": env.get("python") or "", "platform": env.get("platform") or ""}
        environment.update({r.split("==")[0]: r.split("==")[1] for r in requirements if "==" in r})
        return ModelCard(
            name=mv.name,
            version=str(mv.version),
            description="\n\n".join(d for d in (model.description, mv.description) if d),
            intended_use=model.intended_use,
            limitations=model.limitations,
            created_at=graph["model_version"]["created"] or "",
            created_by=mv.user_id or "",
            aliases=list(mv.aliases),
            tags={**model.tags, **mv.tags},
            lineage={
                "run_id": run.get("run_id"),
                "experiment": run.get("experiment"),
                "git_commit": code.get("git_commit"),
                "git_dirty": bool(code.get("git_dirty")),
                "datasets": [
                    {
                        "name": d["name"],
                        "digest": d["digest"],
                        "role": d["context"],
                        "rows": d["rows"],
                    }
                    for d in graph["datasets"]
                ],
                "environment": {k: v for k, v in environment.items() if v},
            },
            training_params=dict(run.get("params", {})),
            training_metrics=dict(run.get("metrics", {})),
            evaluations=[
                {
                    "dataset": e["dataset"] or "",
                    "digest": e["digest"] or "",
                    "metrics": e["metrics"],
                    "slices": e["slices"],
                    "run_id": e["run_id"] or "",
                }
                for e in graph["evaluations"]
            ],
            verdicts=[
                {
                    "alias": p.alias,
                    "passed": p.passed,
                    "forced": p.forced,
                    "reason": p.reason,
                    "time": _iso(p.time),
                    "user": p.actor,
                    "checks": p.checks,
                }
                for p in self._backend.list_promotions(mv.name, mv.version)
            ],
            signature=mv.signature,
            requirements=requirements,
            alias_history=[
                {**dataclasses.asdict(e), "time": _iso(e.time), "user": e.actor}
                for e in self._backend.get_alias_history(mv.name)
            ],
            size_bytes=mv.size_bytes,
        )
