"""seed_everything: reproducible draws, validated seeds, and torch only when already imported."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from modelloop.errors import InvalidArgument
from modelloop.tracking.seed import MAX_SEED, seed_everything


@pytest.fixture(autouse=True)
def _restore_global_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Seeding changes process-wide state; put it back so other tests see no difference."""
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    yield
    random.setstate(python_state)
    np.random.set_state(numpy_state)


def _draws() -> tuple[list[float], list[float]]:
    return [random.random() for _ in range(5)], np.random.rand(5).tolist()


def test_seeding_twice_reproduces_draws() -> None:
    assert seed_everything(1234) == 1234
    first = _draws()
    seed_everything(1234)
    assert _draws() == first
    seed_everything(4321)
    assert _draws() != first


def test_hash_seed_reaches_subprocesses() -> None:
    seed_everything(7)
    assert os.environ["PYTHONHASHSEED"] == "7"
    command = [sys.executable, "-c", "print(hash('modelloop'))"]
    runs = {subprocess.run(command, capture_output=True, text=True, check=True).stdout}
    runs.add(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert len(runs) == 1


@pytest.mark.parametrize("seed", [0, MAX_SEED, np.int64(5)])
def test_bounds_and_integer_types_are_accepted(seed: Any) -> None:
    result = seed_everything(seed)
    assert result == int(seed)
    assert type(result) is int


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 1.5, "3", True, None])
def test_invalid_seeds_are_rejected(seed: Any) -> None:
    with pytest.raises(InvalidArgument, match="seed must be"):
        seed_everything(seed)


def test_never_imports_torch() -> None:
    had_torch = "torch" in sys.modules
    seed_everything(1)
    assert ("torch" in sys.modules) == had_torch


class _FakeCuda:
    def __init__(self, available: bool) -> None:
        self.available = available
        self.seeds: list[int] = []

    def is_available(self) -> bool:
        return self.available

    def manual_seed_all(self, seed: int) -> None:
        self.seeds.append(seed)


@pytest.mark.parametrize("cuda_available", [False, True])
def test_seeds_torch_when_already_imported(
    monkeypatch: pytest.MonkeyPatch, cuda_available: bool
) -> None:
    # A stand-in module in sys.modules, the seam seed_everything looks through.
    seeds: list[int] = []
    torch = types.ModuleType("torch")
    torch.manual_seed = seeds.append  # type: ignore[attr-defined]
    torch.cuda = _FakeCuda(cuda_available)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    seed_everything(99)
    assert seeds == [99]
    assert torch.cuda.seeds == ([99] if cuda_available else [])
