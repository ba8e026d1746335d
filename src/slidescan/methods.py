"""Methods: "events that may hold signal (label 1) vs a background reference of the SR (label 0)".

Methods differ only in where the two samples come from; training, scoring and the bump hunt
are shared. A method name combines the reference and the classifier backend, e.g. ``cwola-nn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .data import FEATURES
from .windows import REGION_SR


@dataclass
class TrainingSet:
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class Reference:
    name: str
    needs_truth: bool
    description: str
    build: Callable[[pd.DataFrame, dict[str, pd.DataFrame], int], tuple[pd.DataFrame, pd.DataFrame]]
    # the table of SR reference events, when the reference is not the data itself; its events of the
    # scored fold are held out and scored too, so "SR data vs reference" can be checked (AUC 0.5 without signal)
    reference_table: str | None = None


def _cwola(window_data, references, fold):
    train = window_data[window_data["fold"] != fold]
    return train[train["region"] == REGION_SR], train[train["region"] != REGION_SR]


def _idealized(window_data, references, fold):
    train = window_data[(window_data["fold"] != fold) & (window_data["region"] == REGION_SR)]
    ref = references["background_sr"]
    return train, ref[ref["fold"] != fold]


def _supervised(window_data, references, fold):
    sig = references["signal"]
    ref = references["background_sr"]
    return sig[sig["fold"] != fold], ref[ref["fold"] != fold]


def _cathode(window_data, references, fold):
    train = window_data[(window_data["fold"] != fold) & (window_data["region"] == REGION_SR)]
    samples = references["flow_samples"]
    return train, samples[samples["fold"] != fold]


REFERENCES = {
    "cwola": Reference("cwola", False, "SR data vs sideband data (CWoLa hunting)", _cwola),
    "cathode": Reference("cathode", False, "SR data vs samples of a sideband-trained flow (CATHODE)", _cathode,
                         reference_table="flow_samples"),
    "idealized": Reference("idealized", True, "SR data vs true SR background (simulation only)", _idealized,
                           reference_table="background_sr"),
    "supervised": Reference("supervised", True, "signal vs SR background with truth (simulation only)", _supervised,
                            reference_table="background_sr"),
}
BACKENDS = {
    "nn": "vectorised MLP ensemble (PyTorch)",
    "bdt": "HistGradientBoosting ensemble (scikit-learn, as in arXiv:2309.13111)",
}


def needs_flow(method: str) -> bool:
    return parse_method(method)[0].name == "cathode"


def held_out_reference(method: str, references: dict[str, pd.DataFrame], fold: int) -> pd.DataFrame | None:
    """Reference events of ``fold``: never trained on by the model that scores that fold."""
    table = parse_method(method)[0].reference_table
    if table is None:
        return None
    ref = references[table]
    return ref[ref["fold"] == fold]


def parse_method(name: str) -> tuple[Reference, str]:
    """Split ``cwola-nn`` into its reference and backend, with an error listing what exists."""
    reference, _, backend = name.partition("-")
    if reference not in REFERENCES or backend not in BACKENDS:
        valid = [f"{r}-{b}" for r in REFERENCES for b in BACKENDS]
        raise ValueError(f"unknown method {name!r}; valid methods: {valid}")
    return REFERENCES[reference], backend


def training_set(method: str, window_data: pd.DataFrame, references: dict[str, pd.DataFrame], fold: int) -> TrainingSet:
    """Label-1 and label-0 events of a method for training the model of ``fold``.

    Data events of ``fold`` itself are never in it: they are the ones this model scores.
    """
    reference, _ = parse_method(method)
    positive, negative = reference.build(window_data, references, fold)
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError(
            f"method {method}, fold {fold}: empty training sample "
            f"({len(positive)} label-1 events, {len(negative)} reference events); "
            "widen the window or add events"
        )
    x = np.concatenate([positive[FEATURES].to_numpy(), negative[FEATURES].to_numpy()])
    y = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    w = np.concatenate([
        positive["weight"].to_numpy() if "weight" in positive else np.ones(len(positive)),
        negative["weight"].to_numpy() if "weight" in negative else np.ones(len(negative)),
    ])
    return TrainingSet(x, y, w)


def balanced_weights(y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-event weights giving both classes the same total weight, mean weight 1."""
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    out = np.empty(len(y))
    for label in (0, 1):
        mask = y == label
        total = w[mask].sum()
        if total <= 0:
            raise ValueError(f"training set has no events of class {label}")
        out[mask] = w[mask] * (0.5 * w.sum() / total)
    return out / out.mean()
