"""Gradient-boosted tree ensembles, as in "Back to the Roots" (arXiv:2309.13111).

Each member is a scikit-learn ``HistGradientBoostingClassifier`` with balanced class weights and its
own random train/validation split. Early stopping uses the weighted loss on that member's
validation split, which the fit never sees (a public wrapper in this field fitted on the full set
without weights after splitting: a leak we do not repeat). Finished members are checkpointed one
by one, so a killed job resumes with the members it had.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .io import atomic_path, content_hash
from .settings import from_config
from .methods import balanced_weights


@dataclass
class BDTSettings:
    members: int = 10
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    max_bins: int = 127
    validation_fraction: float = 0.2
    n_iter_no_change: int = 10

    @classmethod
    def from_config(cls, config: dict | None) -> "BDTSettings":
        return from_config(cls, config, "classifier.bdt")


class TreeEnsemble:
    def __init__(self, members: list):
        self.members = members

    def predict(self, x: np.ndarray, per_member: bool = False) -> np.ndarray:
        per = np.stack([m.predict_proba(np.asarray(x, float))[:, 1] for m in self.members])
        return per if per_member else per.mean(0)


def train_bdt_ensemble(
    x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None, settings: BDTSettings,
    member_seeds: list[int], checkpoint: str | os.PathLike | None = None, log: Callable[[str], None] = print,
) -> TreeEnsemble:
    from sklearn.ensemble import HistGradientBoostingClassifier

    weights = balanced_weights(np.asarray(y), sample_weight)
    ident = content_hash(np.asarray(x, float), np.asarray(y, float), weights, extra=(asdict(settings), member_seeds))
    ckpt = Path(checkpoint) if checkpoint else None
    done: list = []
    if ckpt and ckpt.exists():
        with open(ckpt, "rb") as handle:
            state = pickle.load(handle)
        if state.get("fingerprint") == ident:
            done = state["members"]
            log(f"resumed from checkpoint {ckpt} with {len(done)} of {len(member_seeds)} members done")
        else:
            log(f"checkpoint {ckpt} belongs to other data or settings; starting fresh")
    for i, seed in enumerate(member_seeds[len(done):], start=len(done)):
        t0 = time.time()
        model = HistGradientBoostingClassifier(
            max_iter=settings.max_iter, learning_rate=settings.learning_rate, max_leaf_nodes=settings.max_leaf_nodes,
            max_bins=settings.max_bins, early_stopping=True, validation_fraction=settings.validation_fraction,
            n_iter_no_change=settings.n_iter_no_change, scoring="loss",
            random_state=int(hashlib.sha256(str(seed).encode()).hexdigest()[:8], 16),
        )
        model.fit(np.asarray(x, float), np.asarray(y), sample_weight=weights)
        done.append(model)
        log(f"member {i + 1}/{len(member_seeds)}: {model.n_iter_} trees, "
            f"best validation loss {-max(model.validation_score_):.5f} ({time.time() - t0:.2f} s)")
        if ckpt:
            with atomic_path(ckpt) as tmp, open(tmp, "wb") as handle:
                pickle.dump({"fingerprint": ident, "members": done}, handle)
    return TreeEnsemble(done)
