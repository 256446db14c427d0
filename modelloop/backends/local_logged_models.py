"""The logged-model part of :class:`~modelloop.backends.LocalBackend`: MLflow 3's
logged models, each one transaction with its audit row.

A logged model always has a source run, in the same experiment; its files are
artifacts of that run under ``_logged_models/<model_id>/`` (see
:mod:`modelloop.store.logged_models`), uploaded with the run's artifact methods.
"""

from __future__ import annotations

from sqlalchemy import Connection

from modelloop import validation as v
from modelloop.backends.local_artifacts import LocalStoreBase
from modelloop.entities import Page
from modelloop.errors import InvalidArgument
from modelloop.store import audit, experiments, runs
from modelloop.store import logged_models as lm
from modelloop.store.logged_models import LoggedModel, LoggedModelStatus

__all__ = ["LocalLoggedModels", "LoggedModel", "LoggedModelStatus"]

_MAX_PAGE = 10_000
_MAX_MODEL_TYPE_LENGTH = 256


def _key_values(values: dict[str, str] | None, what: str) -> dict[str, str]:
    clean = {}
    for key, value in (values or {}).items():
        v.check_key(key, what)
        clean[key] = v.param_value(key, value) if what == "param" else v.tag_value(key, value)
    return clean


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidArgument(f"invalid page token {token[:60]!r}")
    return int(token)


class LocalLoggedModels(LocalStoreBase):
    """MLflow 3 logged models over the metadata store."""

    def create_logged_model(
        self,
        experiment_id: str,
        source_run_id: str,
        name: str,
        model_type: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> LoggedModel:
        """Create a PENDING logged model of a run that is not deleted (ended is fine:
        MLflow logs models after a run ends) in the run's experiment."""
        eid = experiments.parse_id(experiment_id)
        v.check_name(name, "logged model name", v.MAX_KEY_LENGTH)
        if model_type is not None:
            v.check_name(model_type, "model type", _MAX_MODEL_TYPE_LENGTH)
        clean_tags = _key_values(tags, "tag")
        clean_params = _key_values(params, "param")
        model_id = lm.new_model_id()

        def create(conn: Connection) -> LoggedModel:
            run = runs.require_writable(conn, source_run_id, allow_ended=True)
            if run["experiment_id"] != eid:
                raise InvalidArgument(
                    f"run {source_run_id!r} is in experiment {run['experiment_id']}, not "
                    f"{eid}: a logged model lives in its source run's experiment"
                )
            return lm.insert(
                conn,
                model_id=model_id,
                experiment_id=eid,
                source_run_id=source_run_id,
                name=name,
                model_type=model_type or None,
                user_id=audit.current_actor(),
                tags=clean_tags,
                params=clean_params,
            )

        return self._write(
            create,
            "logged_model.create",
            "logged_model",
            model_id,
            {"run_id": source_run_id, "name": name},
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """A logged model with its tags and params."""
        return self._read(lambda c: lm.get(c, model_id))

    def search_logged_models(
        self,
        experiment_ids: list[str] | None = None,
        name: str | None = None,
        source_run_id: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[LoggedModel]:
        """Logged models matching every given condition, newest first."""
        size = v.check_int("max_results", max_results)
        if not 1 <= size <= _MAX_PAGE:
            raise InvalidArgument(f"max_results must be between 1 and {_MAX_PAGE}, got {size}")
        offset = _offset(page_token)
        eids = None if experiment_ids is None else [experiments.parse_id(e) for e in experiment_ids]
        found, more = self._read(
            lambda c: lm.search(
                c,
                experiment_ids=eids,
                name=name,
                source_run_id=source_run_id,
                max_results=size,
                offset=offset,
            )
        )
        return Page(found, str(offset + size) if more else None)

    def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus | str, message: str | None = None
    ) -> LoggedModel:
        """Set a logged model's status (READY once its files are uploaded)."""
        try:
            new = LoggedModelStatus(status)
        except ValueError:
            allowed = ", ".join(s.value for s in LoggedModelStatus)
            raise InvalidArgument(
                f"invalid logged model status {status!r}; one of {allowed}"
            ) from None
        return self._write(
            lambda c: lm.set_status(c, model_id, new, message),
            "logged_model.finalize",
            "logged_model",
            model_id,
            {"status": new.value},
        )

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        """Set (overwrite) tags of a logged model."""
        clean = _key_values(tags, "tag")
        self._write(
            lambda c: lm.set_tags(c, model_id, clean) if clean else lm.get(c, model_id),
            "logged_model.set_tags",
            "logged_model",
            model_id,
            {"keys": sorted(clean)},
        )

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag of a logged model."""
        self._write(
            lambda c: lm.delete_tag(c, model_id, key),
            "logged_model.delete_tag",
            "logged_model",
            model_id,
            {"key": key},
        )

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        """Record params of a logged model (a logged param cannot change)."""
        clean = _key_values(params, "param")
        self._write(
            lambda c: lm.log_params(c, model_id, clean) if clean else lm.get(c, model_id),
            "logged_model.log_params",
            "logged_model",
            model_id,
            {"keys": sorted(clean)},
        )

    def delete_logged_model(self, model_id: str) -> None:
        """Forget a logged model; its files stay in the run's artifacts (registered
        versions may point at them)."""
        self._write(
            lambda c: lm.delete_model(c, model_id),
            "logged_model.delete",
            "logged_model",
            model_id,
        )
