"""Seeds derived from names, so that every random choice is reproducible and independent.

``derive_seed(17, "inject", 300, 2)`` is the same on every machine and in every process, and
differs from any other combination of parts; no two stages share a random stream by accident.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(*parts: object) -> int:
    """A 63-bit integer seed from any sequence of printable parts."""
    text = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*parts))
