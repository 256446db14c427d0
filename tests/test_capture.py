"""Run context capture: the git state of real temporary repositories, and the environment."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pandas
import pytest

from modelloop.errors import InvalidArgument
from modelloop.tracking.capture import (
    EnvironmentInfo,
    environment_info,
    git_info,
    requirements_text,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the user's git config out, and stop repository discovery at ``tmp_path``."""
    empty = tmp_path / "empty.gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return tmp_path


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=test@example.com", "-c", "user.name=Test", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(isolated_git: Path) -> Path:
    """A repository on branch ``main`` with one commit of ``train.py``."""
    path = isolated_git / "repo"
    path.mkdir()
    _git(path, "init", "--initial-branch=main")
    (path / "train.py").write_text("lr = 0.1\n")
    _git(path, "add", "train.py")
    _git(path, "commit", "-m", "first")
    return path


@needs_git
def test_clean_repository(repo: Path) -> None:
    info = git_info(repo, max_age=0)
    assert info is not None
    assert info.commit == _git(repo, "rev-parse", "HEAD")
    assert len(info.commit) == 40
    assert info.branch == "main"
    assert info.dirty is False
    assert info.diff == ""


@needs_git
def test_modified_file_makes_it_dirty_with_the_change_in_the_diff(repo: Path) -> None:
    (repo / "train.py").write_text("lr = 0.2\n")
    info = git_info(repo, max_age=0)
    assert info is not None
    assert info.dirty is True
    assert "-lr = 0.1" in info.diff
    assert "+lr = 0.2" in info.diff
    assert "untracked" not in info.diff


@needs_git
def test_untracked_files_are_named_but_not_included(repo: Path) -> None:
    (repo / "notes.txt").write_text("secret content\n")
    info = git_info(repo, max_age=0)
    assert info is not None
    assert info.dirty is True
    assert "notes.txt" in info.diff
    assert "secret content" not in info.diff
    assert info.diff.startswith("# untracked files")


@needs_git
def test_answers_are_cached_until_max_age(repo: Path) -> None:
    assert git_info(repo, max_age=0) == git_info(repo)
    (repo / "train.py").write_text("lr = 0.3\n")
    cached = git_info(repo)
    assert cached is not None
    assert cached.dirty is False  # the answer from before the edit, within 10 s
    fresh = git_info(repo, max_age=0)
    assert fresh is not None
    assert fresh.dirty is True


@needs_git
def test_detached_head_has_no_branch(repo: Path) -> None:
    _git(repo, "checkout", "--detach")
    info = git_info(repo, max_age=0)
    assert info is not None
    assert info.branch is None
    assert info.commit == _git(repo, "rev-parse", "HEAD")


@needs_git
def test_subdirectory_and_file_paths_find_the_work_tree(repo: Path) -> None:
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    top = git_info(repo, max_age=0)
    assert git_info(sub, max_age=0) == top
    assert git_info(str(repo / "train.py"), max_age=0) == top


@needs_git
def test_outside_a_repository_is_none(isolated_git: Path) -> None:
    outside = isolated_git / "outside"
    outside.mkdir()
    assert git_info(outside, max_age=0) is None


@needs_git
def test_repository_without_commits_is_none(isolated_git: Path) -> None:
    path = isolated_git / "fresh"
    path.mkdir()
    _git(path, "init")
    assert git_info(path, max_age=0) is None


@needs_git
def test_without_git_installed_is_none(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_git = repo.parent / "bin"
    no_git.mkdir()
    monkeypatch.setenv("PATH", str(no_git))
    assert git_info(repo, max_age=0) is None


def test_missing_path_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        git_info(tmp_path / "nope", max_age=0)


def test_environment_info_describes_this_process() -> None:
    info = environment_info()
    assert info.python_version == platform.python_version()
    assert info.python_implementation == platform.python_implementation()
    assert info.platform
    assert info.host
    assert info.user
    assert f"pandas=={pandas.__version__}" in info.packages
    assert list(info.packages) == sorted(info.packages, key=str.lower)
    names = [line.split("==")[0].lower().replace("_", "-") for line in info.packages]
    assert len(names) == len(set(names))
    assert environment_info().packages is info.packages  # computed once per process


def test_command_line_is_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--note", "x" * 5000])
    line = environment_info().command_line
    assert len(line) == 1000
    assert line.startswith("train.py --note xxx")


def test_requirements_text() -> None:
    info = EnvironmentInfo(
        python_version="3.11.7",
        python_implementation="CPython",
        platform="Linux",
        host="h",
        user="u",
        command_line="train.py",
        packages=("numpy==2.0.0", "pandas==2.2.0"),
    )
    assert requirements_text(info) == "# Python 3.11.7 (CPython)\nnumpy==2.0.0\npandas==2.2.0\n"
    real = requirements_text(environment_info())
    assert f"\npandas=={pandas.__version__}\n" in real
