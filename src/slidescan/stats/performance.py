"""Classifier performance where the truth is known (simulation): ROC, SIC and max SIC against S/B.

Computed from the scan's own out-of-fold scores of the signal region of the window that holds the
signal, so they describe exactly the classifiers behind the p-values.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..io import read_attrs, read_table
from ..windows import REGION_SR
from .metrics import sic_figures


def sr_truth(scores_file: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    df = read_table(scores_file, "scores")
    sr = df[df["region"] == REGION_SR]
    return sr["label"].to_numpy(), sr["score"].to_numpy()


def performance_table(score_files: list[str]) -> pd.DataFrame:
    """One row per (method, injection, seed) with signal in the SR: S/B and the SIC figures."""
    rows = []
    for path in score_files:
        attrs = read_attrs(path)
        labels, scores = sr_truth(path)
        n_sig = int(labels.sum())
        if n_sig == 0 or n_sig == len(labels):
            continue
        rows.append({"window": attrs["window"], "method": attrs["method"], "injection": int(attrs["injection"]),
                     "seed": int(attrs["seed"]), "n_signal_sr": n_sig, "n_background_sr": int(len(labels) - n_sig),
                     "s_over_b": n_sig / (len(labels) - n_sig), **sic_figures(labels, scores)})
    columns = ["window", "method", "injection", "seed", "n_signal_sr", "n_background_sr", "s_over_b", "auc",
               "max_sic_20", "max_sic_50", "sic_at_0.2", "sic_at_0.3"]
    return pd.DataFrame(rows, columns=columns).sort_values(["method", "injection", "seed"]).reset_index(drop=True)
