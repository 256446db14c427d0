"""The generated references match the code, and nothing goes undocumented."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from modelloop.cli import docgen
from modelloop.settings import ENV_PREFIX, settings_table

DOCS = Path(__file__).resolve().parent.parent / "docs"
SETTINGS = settings_table()


@pytest.mark.parametrize(
    ("name", "generate"),
    [("cli.md", docgen.cli_reference), ("settings.md", docgen.settings_reference)],
)
def test_generated_doc_is_current(name: str, generate: Callable[[], str]) -> None:
    path = DOCS / name
    if not path.is_file():
        pytest.fail(f"docs/{name} is missing: run `make docs`")
    written = path.read_text(encoding="utf-8")
    expected = generate()
    if written != expected:
        diff = difflib.unified_diff(
            written.splitlines(),
            expected.splitlines(),
            f"docs/{name} (written)",
            f"docs/{name} (generated now)",
            lineterm="",
        )
        pytest.fail(
            f"docs/{name} is out of date: run `make docs`\n" + "\n".join(list(diff)[:60]),
            pytrace=False,
        )


def test_generation_is_deterministic() -> None:
    assert docgen.cli_reference() == docgen.cli_reference()
    assert docgen.settings_reference() == docgen.settings_reference()


@pytest.mark.parametrize(("name", "help_text"), [(r[0], r[3]) for r in SETTINGS])
def test_every_setting_has_help(name: str, help_text: str) -> None:
    assert help_text.strip(), f"setting {name!r} has no help text"


@pytest.mark.parametrize("name", [r[0] for r in SETTINGS])
def test_every_setting_is_documented(name: str) -> None:
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    assert f"`{name}`" in text, f"setting {name!r} is not in docs/settings.md: run `make docs`"
    assert f"`{ENV_PREFIX}{name.upper()}`" in text


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, cmd, ctx in docgen.iter_commands():
        if not (cmd.help or "").strip():
            missing.append(path)
        for param in cmd.get_params(ctx):
            if param.param_type_name == "option" and not (getattr(param, "help", "") or ""):
                missing.append(f"{path} {param.opts[0]}")
    assert not missing, f"no help text: {missing}"


def test_every_command_is_in_the_reference() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    paths = [path for path, _, _ in docgen.iter_commands()]
    assert {"modelloop runs list", "modelloop db upgrade", "modelloop gc"} <= set(paths)
    for path in paths:
        assert f"## `{path}`" in text, f"{path} is not in docs/cli.md: run `make docs`"


def test_help_is_plain_text_at_a_fixed_width() -> None:
    text = docgen.cli_reference()
    assert "\x1b[" not in text
    assert not set("╭╮╰╯│─") & set(text)
    assert max(len(line) for line in text.splitlines() if not line.startswith("|")) <= 100


@pytest.mark.parametrize(
    ("args", "generate"),
    [([], docgen.cli_reference), (["--settings"], docgen.settings_reference)],
)
def test_module_entry_point(args: list[str], generate: Callable[[], str]) -> None:
    # A narrow, colour-forcing terminal must not change the output.
    env = {**os.environ, "COLUMNS": "40", "TERMINAL_WIDTH": "40", "FORCE_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "modelloop.cli.docgen", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == generate()
