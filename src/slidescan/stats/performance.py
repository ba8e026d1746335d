"""Classifier performance where the truth is known (labelled events): ROC, SIC and max SIC against S/B.

Computed from the scan's own out-of-fold scores of the signal region of the window that holds the
signal, so they describe exactly the classifiers behind the p-values.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..data import weights_of
from ..io import read_attrs, read_table
from ..windows import REGION_SR
from .metrics import sic_figures


class SRTruth(NamedTuple):
    """The SR events of a scores file: truth labels, scores, and weights (None for unweighted inputs)."""

    labels: np.ndarray
    scores: np.ndarray
    weights: np.ndarray | None


def sr_truth(scores_file: str | os.PathLike) -> SRTruth:
    df = read_table(scores_file, "scores")
    sr = df[df["region"] == REGION_SR]
    return SRTruth(sr["label"].to_numpy(), sr["score"].to_numpy(), weights_of(sr))


def performance_table(score_files: list[str]) -> pd.DataFrame:
    """One row per (method, injection, seed) with signal in the SR: S/B and the SIC figures (sums of weights and
    weighted efficiencies for weighted inputs)."""
    rows = []
    for path in score_files:
        attrs = read_attrs(path)
        truth = sr_truth(path)
        n_sig = int(truth.labels.sum())
        if n_sig == 0 or n_sig == len(truth.labels):
            continue
        w = np.ones(len(truth.labels)) if truth.weights is None else truth.weights
        s, b = float(w[truth.labels == 1].sum()), float(w[truth.labels == 0].sum())
        if truth.weights is None:
            s, b = int(s), int(b)
        rows.append({"window": attrs["window"], "method": attrs["method"], "injection": int(attrs["injection"]),
                     "seed": int(attrs["seed"]), "n_signal_sr": s, "n_background_sr": b, "s_over_b": s / b,
                     **sic_figures(truth.labels, truth.scores, weights=truth.weights)})
    columns = ["window", "method", "injection", "seed", "n_signal_sr", "n_background_sr", "s_over_b", "auc",
               "max_sic_20", "max_sic_50", "sic_at_0.2", "sic_at_0.3"]
    return pd.DataFrame(rows, columns=columns).sort_values(["method", "injection", "seed"]).reset_index(drop=True)
