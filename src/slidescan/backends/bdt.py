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
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from .. import checkpoint as ckpt
from ..io import content_hash
from ..settings import Settings, section_schema
from . import register_backend
from .base import Backend, balanced_weights, one_group


@dataclass(frozen=True)
class BDTSettings(Settings):
    section = "classifier.bdt"
    schema = section_schema("""
description: HistGradientBoosting ensemble as in "Back to the Roots" (arXiv:2309.13111)
properties:
  members: {type: integer, minimum: 1, default: 10}
  max_iter: {type: integer, minimum: 1, default: 200}
  learning_rate: {type: number, exclusiveMinimum: 0, default: 0.1}
  max_leaf_nodes: {type: integer, minimum: 2, default: 31}
  max_bins: {type: integer, minimum: 2, maximum: 255, default: 127}
  validation_fraction: {type: number, exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2}
  n_iter_no_change: {type: integer, minimum: 1, default: 10}
""")

    members: int
    max_iter: int
    learning_rate: float
    max_leaf_nodes: int
    max_bins: int
    validation_fraction: float
    n_iter_no_change: int


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
    state = ckpt.load(checkpoint, ident, log, fmt="pickle")
    done: list = []
    if state is not None:
        done = state["slidescan"]["members"]
        log(f"resumed from checkpoint {checkpoint} with {len(done)} of {len(member_seeds)} members done")
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
        if checkpoint:
            ckpt.save(checkpoint, ident, {"members": done}, epoch=len(done), fmt="pickle")
    return TreeEnsemble(done)


class BDTBackend(Backend):
    name = "bdt"
    description = "HistGradientBoosting ensemble (scikit-learn, as in arXiv:2309.13111)"
    settings_type = BDTSettings

    def fit(self, settings, groups, checkpoint, log, epoch_key=None):
        ts, seeds, _ = one_group(self.name, groups)
        return [train_bdt_ensemble(ts.x, ts.y, ts.weight, settings, seeds, checkpoint=checkpoint, log=log)]


register_backend(BDTBackend())
