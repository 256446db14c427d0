"""What every run records automatically: the git state of the code and the Python environment."""

from __future__ import annotations

import dataclasses
import functools
import getpass
import importlib.metadata
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar

from modelloop.errors import InvalidArgument

__all__ = [
    "GIT_INFO_MAX_AGE",
    "EnvironmentInfo",
    "GitInfo",
    "environment_info",
    "git_info",
    "requirements_text",
]

# git_info() runs on every run start, and each answer costs five git processes (a few
# milliseconds each, far more on a big repository or a network file system). Runs
# started in a loop (a sweep, a test suite) see the same checkout, so an answer is
# reused for this many seconds. The price: an edit made within that window is not seen
# until it expires; pass ``max_age=0`` to force a fresh look.
GIT_INFO_MAX_AGE = 10.0

_GIT_TIMEOUT_SECONDS = 10
_COMMAND_LINE_MAX_CHARS = 1000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _TTLCache(Generic[K, V]):
    """A small thread-safe map whose entries are reused only while younger than ``max_age``."""

    def __init__(self, max_entries: int = 64) -> None:
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: K, max_age: float, compute: Callable[[], V]) -> V:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < max_age:
            return entry[1]
        # Computed outside the lock: a slow git call must not block other keys.
        value = compute()
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            if len(self._entries) > self._max_entries:
                oldest = min(self._entries, key=lambda k: self._entries[k][0])
                del self._entries[oldest]
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclasses.dataclass(frozen=True)
class GitInfo:
    """The state of the git checkout a run's code came from.

    ``branch`` is None on a detached HEAD. ``diff`` is empty for a clean checkout;
    otherwise it is ``git diff HEAD``, preceded by a comment naming untracked files
    (their content is not included).
    """

    commit: str
    branch: str | None
    dirty: bool
    diff: str


# Keyed by the directory asked about (-> its work tree's top level) and by the top
# level (-> its GitInfo), so that a cache hit spawns no git process at all.
_toplevel_cache: _TTLCache[Path, str | None] = _TTLCache()
_git_info_cache: _TTLCache[str, GitInfo | None] = _TTLCache()


def git_info(path: str | Path = ".", *, max_age: float = GIT_INFO_MAX_AGE) -> GitInfo | None:
    """The git state of the work tree containing ``path``.

    None when ``path`` is not inside a git work tree, when the repository has no
    commit yet, or when git is not installed. Answers are reused for ``max_age``
    seconds (see ``GIT_INFO_MAX_AGE``); ``max_age=0`` always asks git again.
    """
    try:
        directory = Path(path).resolve()
    except OSError:  # the working directory was deleted under us
        return None
    if not directory.exists():
        raise InvalidArgument(f"git_info: path {str(directory)!r} does not exist", path=str(path))
    if not directory.is_dir():
        directory = directory.parent
    toplevel = _toplevel_cache.get_or_compute(
        directory, max_age, lambda: _git(directory, "rev-parse", "--show-toplevel")
    )
    if toplevel is None:
        return None
    return _git_info_cache.get_or_compute(toplevel, max_age, lambda: _read_git_info(toplevel))


def _read_git_info(toplevel: str) -> GitInfo | None:
    cwd = Path(toplevel)
    commit = _git(cwd, "rev-parse", "--verify", "HEAD")
    if commit is None:  # no commit yet, or git vanished between calls
        return None
    branch = _git(cwd, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(cwd, "status", "--porcelain", "-z", strip=False)
    dirty = bool(status)
    diff = ""
    if dirty:
        untracked = _untracked_names(status or "")
        header = "".join(f"#   {name}\n" for name in untracked)
        if header:
            header = "# untracked files (content not included):\n" + header
        # --no-ext-diff/--no-color: the user's diff tools and colours must not leak in.
        body = _git(cwd, "diff", "--no-color", "--no-ext-diff", "HEAD", strip=False) or ""
        diff = header + body
    return GitInfo(
        commit=commit,
        branch=None if branch in (None, "HEAD") else branch,
        dirty=dirty,
        diff=diff,
    )


def _untracked_names(porcelain_z: str) -> list[str]:
    names: list[str] = []
    entries = iter(porcelain_z.split("\0"))
    for entry in entries:
        if entry.startswith("?? "):
            names.append(entry[3:])
        elif entry[:1] in ("R", "C"):
            next(entries, None)  # a rename or copy is followed by its source path
    return names


def _git(cwd: Path, *args: str, strip: bool = True) -> str | None:
    """The output of a git command, or None when it fails or git cannot be run."""
    # GIT_OPTIONAL_LOCKS=0 keeps `git status` from writing the index, so a concurrent
    # git command of the user's never meets a lock taken by us.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",  # a diff of a non-UTF-8 file must not fail the run
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):  # not installed, not runnable, hung
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() if strip else done.stdout


@dataclasses.dataclass(frozen=True)
class EnvironmentInfo:
    """The interpreter, machine and installed packages a run executed with.

    ``packages`` holds sorted ``name==version`` lines of the installed distributions.
    """

    python_version: str
    python_implementation: str
    platform: str
    host: str
    user: str
    command_line: str
    packages: tuple[str, ...]


def environment_info() -> EnvironmentInfo:
    """The current process's environment."""
    return EnvironmentInfo(
        python_version=platform.python_version(),
        python_implementation=platform.python_implementation(),
        platform=platform.platform(),
        host=socket.gethostname(),
        user=_user(),
        command_line=shlex.join(sys.argv)[:_COMMAND_LINE_MAX_CHARS],
        packages=_installed_packages(),
    )


def requirements_text(info: EnvironmentInfo) -> str:
    """A requirements.txt-style listing of ``info.packages``, headed by the Python version."""
    header = f"# Python {info.python_version} ({info.python_implementation})\n"
    return header + "".join(f"{line}\n" for line in info.packages)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name and no passwd entry
        return "unknown"


@functools.cache
def _installed_packages() -> tuple[str, ...]:
    # Cached for the life of the process: scanning every distribution's metadata takes
    # tens of milliseconds, and installing packages into a running process is rare
    # enough that a stale list is the better trade.
    seen: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name:  # a broken install without metadata
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        # distributions() follows sys.path order, so the first one found is the one
        # imported; later copies are shadowed.
        seen.setdefault(key, f"{name}=={dist.version}")
    return tuple(sorted(seen.values(), key=str.lower))
