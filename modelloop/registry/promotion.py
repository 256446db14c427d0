"""Evaluation runs and gated promotion, on top of :class:`RegistryMixin`.

``evaluate`` scores a model on a DataFrame (or a registered evaluation dataset),
logs the scores as an evaluation run and links it to the version. ``promote``
re-scores the candidate and the current holder of the target alias on the policy's
registered dataset, runs every check of the policy, stores the verdict, and moves
the alias only when every check passed (or when forced, with a reason).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelloop.errors import InvalidArgument, InvalidState, NotFound
from modelloop.registry.client import RegistryMixin
from modelloop.registry.uris import resolve_model_uri

if TYPE_CHECKING:
    import pandas as pd

    from modelloop.entities import ModelVersion, PromotionRecord, RegisteredModel
    from modelloop.registry.evaluation import EvaluationResult, ModelType
    from modelloop.registry.gates import Policy, Verdict

__all__ = ["EVALUATION_EXPERIMENT", "Evaluation", "PromotionMixin"]

#: Where evaluation runs go when the model has no training run to sit beside.
EVALUATION_EXPERIMENT = "modelloop-evaluations"
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclasses.dataclass(frozen=True, slots=True)
class Evaluation:
    """An evaluation: the scores, the run they were logged as, the model and data."""

    result: EvaluationResult
    run_id: str
    model_uri: str
    version: ModelVersion | None
    dataset_name: str | None
    dataset_digest: str


def _metric_key(*parts: str) -> str:
    return ".".join(_KEY_UNSAFE.sub("_", p) for p in parts)


class PromotionMixin(RegistryMixin):
    """``evaluate``, ``set_policy`` and ``promote`` of :class:`~modelloop.Client`."""

    def evaluate(
        self,
        model_uri: str,
        data: pd.DataFrame | str,
        target: str,
        *,
        model_type: ModelType = "classifier",
        slices: list[Any] | tuple[Any, ...] = (),
        trusted: bool | None = None,
        experiment_id: str | None = None,
    ) -> Evaluation:
        """Score a model on ``data`` (a DataFrame or the name of a registered evaluation
        dataset): the standard metrics overall and per slice, and p50/p95 latency.
        Logged as an evaluation run (linked to the version and the dataset digest)."""
        from modelloop.registry.evaluation import evaluate as score
        from modelloop.tracking.datasets import fingerprint

        dataset_name = data if isinstance(data, str) else None
        frame = self.load_dataset(data) if isinstance(data, str) else data
        location = resolve_model_uri(self._backend, model_uri)
        # Load the version just resolved, by number: an alias that moves meanwhile
        # must not make the scores belong to another version than the one recorded.
        pinned = location.version.uri if location.version is not None else model_uri
        model = self.load_model(pinned, trusted=trusted)
        result = score(model, frame, target, model_type=model_type, slices=slices)
        dataset = fingerprint(frame, name=dataset_name or "evaluation")
        version = location.version
        run_id = self._log_evaluation_run(
            model_uri, location.run_id, version, result, frame, dataset_name, experiment_id
        )
        if version is not None:
            self._backend.record_evaluation(
                version.name,
                version.version,
                result.to_dict(),
                run_id=run_id,
                dataset_name=dataset_name,
                dataset_digest=dataset.digest,
            )
        return Evaluation(result, run_id, model_uri, version, dataset_name, dataset.digest)

    def _log_evaluation_run(
        self,
        model_uri: str,
        source_run_id: str | None,
        version: ModelVersion | None,
        result: EvaluationResult,
        frame: pd.DataFrame,
        dataset_name: str | None,
        experiment_id: str | None,
    ) -> str:
        client: Any = self  # the Client this mixin is part of
        if experiment_id is None:
            experiment_id = self._evaluation_experiment(source_run_id)
        tags = {
            "modelloop.run_type": "evaluation",
            "modelloop.evaluation.model_uri": model_uri,
        }
        if version is not None:
            tags["modelloop.evaluation.model_name"] = version.name
            tags["modelloop.evaluation.model_version"] = str(version.version)
        if source_run_id is not None:
            tags["modelloop.evaluation.source_run_id"] = source_run_id
        label = f"{version.name} v{version.version}" if version else model_uri
        run = client.create_run(experiment_id, name=f"evaluate {label}"[:250], tags=tags)
        try:
            client.log_input(run.run_id, frame, name=dataset_name or "evaluation", context="eval")
            metrics = {
                _metric_key(k): float(val)
                for k, val in result.metrics.items()
                if isinstance(val, (int, float))
            }
            for slice_name, slice_metrics in result.slices.items():
                for k, val in slice_metrics.items():
                    if isinstance(val, (int, float)):
                        metrics[_metric_key("slice", slice_name, k)] = float(val)
            client.log_metrics(run.run_id, metrics)
            client.log_dict(run.run_id, result.to_dict(), "evaluation.json")
        except BaseException:
            client.end_run(run.run_id, "FAILED")
            raise
        client.end_run(run.run_id, "FINISHED")
        return str(run.run_id)

    def _evaluation_experiment(self, source_run_id: str | None) -> str:
        if source_run_id is not None:
            try:
                return self._backend.get_run(source_run_id).experiment_id
            except NotFound:
                pass
        try:
            return self._backend.get_experiment_by_name(EVALUATION_EXPERIMENT).experiment_id
        except NotFound:
            return self._backend.create_experiment(EVALUATION_EXPERIMENT)

    # policies and promotion -------------------------------------------------------

    def set_policy(self, name: str, policy: Policy | dict[str, Any] | str | Path) -> Policy:
        """Store a model's promotion policy (a Policy, a dict, YAML text or a YAML file)."""
        parsed = _parse_policy(policy)
        self._backend.update_registered_model(name, policy=parsed.to_dict())
        return parsed

    def get_policy(self, name: str) -> Policy | None:
        """A model's stored promotion policy, if it has one."""
        from modelloop.registry.gates import Policy

        stored = self._backend.get_registered_model(name).policy
        return Policy.from_dict(stored) if stored else None

    def check_promotion(
        self,
        name: str,
        version: int | str,
        *,
        to: str = "champion",
        policy: Policy | dict[str, Any] | str | Path | None = None,
        trusted: bool | None = None,
    ) -> tuple[Verdict, Policy]:
        """Evaluate the policy for moving ``to`` onto ``version`` without recording or
        moving anything."""
        from modelloop.registry.gates import GateInputs, evaluate_policy

        model = self._backend.get_registered_model(name)
        chosen = _parse_policy(policy) if policy is not None else self._stored_policy(model)
        candidate = self._backend.get_model_version(name, version)
        champion = self._holder(name, to)
        if champion is not None and champion.version == candidate.version:
            raise InvalidState(f"version {candidate.version} of {name!r} already holds {to!r}")
        cand_eval = champ_eval = None
        if chosen.evaluation_dataset is not None:
            if chosen.target is None or chosen.model_type is None:
                raise InvalidArgument(
                    "the policy names an evaluation dataset but not its target column "
                    "and model_type"
                )
            kwargs: dict[str, Any] = {
                "model_type": chosen.model_type,
                "slices": list(chosen.slices),
                "trusted": trusted,
            }
            cand_eval = self.evaluate(
                candidate.uri, chosen.evaluation_dataset, chosen.target, **kwargs
            ).result
            if champion is not None:
                champ_eval = self.evaluate(
                    champion.uri, chosen.evaluation_dataset, chosen.target, **kwargs
                ).result
        verdict = evaluate_policy(
            chosen,
            GateInputs(
                cand_eval, candidate.signature, candidate.size_bytes, str(candidate.version)
            ),
            None
            if champion is None
            else GateInputs(
                champ_eval, champion.signature, champion.size_bytes, str(champion.version)
            ),
        )
        return verdict, chosen

    def promote(
        self,
        name: str,
        version: int | str,
        *,
        to: str = "champion",
        policy: Policy | dict[str, Any] | str | Path | None = None,
        force: bool = False,
        reason: str = "",
        trusted: bool | None = None,
    ) -> PromotionRecord:
        """Move alias ``to`` onto ``version`` if the model's promotion policy passes.

        The verdict (each check, its value, pass or fail) is stored with the version
        either way; the alias moves only when every check passes, or with
        ``force=True`` and a ``reason`` (recorded as an override). Check
        ``record.moved`` (or ``record.passed``) for the outcome."""
        if force and not reason.strip():
            raise InvalidArgument("--force needs a --reason: overrides are recorded")
        verdict, chosen = self.check_promotion(name, version, to=to, policy=policy, trusted=trusted)
        return self._backend.record_promotion(
            name,
            version,
            to,
            passed=verdict.passed,
            checks=[c.to_dict() for c in verdict.checks],
            forced=force and not verdict.passed,
            reason=reason,
            policy=chosen.to_dict(),
        )

    def _stored_policy(self, model: RegisteredModel) -> Policy:
        from modelloop.registry.gates import Policy

        if not model.policy:
            raise InvalidState(
                f"registered model {model.name!r} has no promotion policy: set one with "
                f"`modelloop models policy {model.name} policy.yaml` (or pass a policy)"
            )
        return Policy.from_dict(model.policy)

    def _holder(self, name: str, alias: str) -> ModelVersion | None:
        try:
            return self._backend.get_model_version_by_alias(name, alias)
        except NotFound:
            return None


def _parse_policy(policy: Policy | dict[str, Any] | str | Path) -> Policy:
    from modelloop.registry.gates import Policy

    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, dict):
        return Policy.from_dict(policy)
    if isinstance(policy, (str, Path)):
        return Policy.from_yaml(policy)
    raise InvalidArgument(f"a policy must be a Policy, a dict or YAML, got {type(policy).__name__}")


def verdict_json(record: PromotionRecord) -> str:
    """A promotion record as JSON (for the CLI's --json)."""
    return json.dumps(dataclasses.asdict(record), indent=2, sort_keys=True)
