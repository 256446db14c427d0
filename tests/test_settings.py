"""The settings table: environment over config file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelloop.errors import InvalidArgument
from modelloop.settings import Settings, load_settings, settings_table


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s == Settings()
    assert s.tracking_uri == ".modelloop"


def test_env_over_file_over_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "modelloop.toml"
    cfg.write_text(
        '[modelloop]\ntracking_uri = "from-file"\nmetric_buffer_size = 7\ncapture_git = false\n'
    )
    env = {"MODELLOOP_CONFIG": str(cfg), "MODELLOOP_TRACKING_URI": "from-env"}
    s = load_settings(environ=env)
    assert s.tracking_uri == "from-env"
    assert s.metric_buffer_size == 7
    assert s.capture_git is False
    assert s.sqlite_busy_timeout == Settings().sqlite_busy_timeout
    assert load_settings(environ=env, tracking_uri="arg").tracking_uri == "arg"


def test_config_file_in_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "modelloop.toml").write_text('tracking_uri = "here"\n')
    assert load_settings(environ={}).tracking_uri == "here"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELLOOP_METRIC_BUFFER_SIZE": "lots"}, "metric_buffer_size.*int"),
        ({"MODELLOOP_CAPTURE_GIT": "maybe"}, "capture_git.*bool"),
        ({"MODELLOOP_CONFIG": "/nonexistent/modelloop.toml"}, "does not exist"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        load_settings(environ=env)


def test_bad_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("tracking_uri = \n")
    with pytest.raises(InvalidArgument, match="not valid TOML"):
        load_settings(environ={}, config_file=cfg)
    cfg.write_text('trackin_uri = "typo"\n')
    with pytest.raises(InvalidArgument, match="unknown setting 'trackin_uri'"):
        load_settings(environ={}, config_file=cfg)


def test_secrets_are_masked_in_repr() -> None:
    s = Settings(http_token="s3cr3t")
    assert "s3cr3t" not in repr(s)
    assert "http_token='***'" in repr(s)


def test_every_setting_has_type_default_and_help() -> None:
    rows = settings_table()
    assert len(rows) >= 8
    for name, type_name, _default, help_text in rows:
        assert type_name in {"str", "int", "float", "bool"}, name
        assert len(help_text) > 10, name
