"""Seeding every random number generator a training script is likely to use."""

from __future__ import annotations

import numbers
import os
import random
import sys

import numpy as np

from modelloop.errors import InvalidArgument

__all__ = ["MAX_SEED", "seed_everything"]

MAX_SEED = 2**32 - 1  # numpy.random.seed accepts no more


def seed_everything(seed: int) -> int:
    """Seed ``random``, NumPy's global generator and, when already imported, PyTorch.

    Also sets ``PYTHONHASHSEED``; string hashing of the running interpreter was fixed
    at its start, so this reaches only subprocesses started afterwards (workers of
    ``multiprocessing`` with the spawn method, ``subprocess`` calls).

    NumPy's ``default_rng()`` generators are independent of the global one: create
    them with an explicit seed. PyTorch is seeded only if the program has imported it,
    so calling this never pays torch's import time. Returns ``seed``.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InvalidArgument(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise InvalidArgument(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    random.seed(seed)
    np.random.seed(seed)  # the legacy global generator, which scripts use
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    return seed
