"""The promised public names: changing them is a deliberate act."""

from __future__ import annotations

import modelloop


def test_public_api_is_pinned() -> None:
    assert modelloop.__all__ == sorted(modelloop.__all__)
    assert set(modelloop.__all__) == {
        "ActiveRun", "AlreadyExists", "Client", "Conflict", "Experiment", "InvalidArgument",
        "InvalidState", "Metric", "ModelloopError", "NotFound", "PermissionDenied", "Run",
        "RunStatus", "Settings", "ViewType", "__version__", "active_run", "end_run", "flush",
        "get_client", "get_tracking_uri", "load_settings", "log_artifact", "log_artifacts",
        "log_dict", "log_figure", "log_input", "log_metric", "log_metrics", "log_param",
        "log_params", "log_text", "search_runs", "seed_everything", "set_experiment", "set_tag",
        "set_tags", "set_tracking_uri", "start_run",
        # models and the registry
        "ModelVersion", "RegisteredModel", "SignatureMismatch", "UntrustedModel", "evaluate",
        "load_model", "log_model", "promote", "register_model",
    }  # fmt: skip
    for name in modelloop.__all__:
        assert hasattr(modelloop, name), name


def test_errors_have_stable_codes_and_statuses() -> None:
    from modelloop import errors

    expected = {
        "InvalidArgument": ("INVALID_ARGUMENT", 400),
        "InvalidState": ("INVALID_STATE", 400),
        "NotFound": ("NOT_FOUND", 404),
        "AlreadyExists": ("ALREADY_EXISTS", 409),
        "Conflict": ("CONFLICT", 409),
        "Unauthenticated": ("UNAUTHENTICATED", 401),
        "PermissionDenied": ("PERMISSION_DENIED", 403),
        "SchemaOutdated": ("SCHEMA_OUTDATED", 503),
        "DataCorrupted": ("DATA_CORRUPTED", 500),
        "SignatureMismatch": ("SIGNATURE_MISMATCH", 400),
        "UntrustedModel": ("UNTRUSTED_MODEL", 403),
        "MissingDependency": ("MISSING_DEPENDENCY", 400),
    }
    for name, (code, status) in expected.items():
        cls = getattr(errors, name)
        assert (cls.code, cls.http_status) == (code, status)
        assert errors.error_class_for_code(code) is cls
        err = cls("boom", key="k")
        assert err.to_dict() == {"error_code": code, "message": "boom", "details": {"key": "k"}}
