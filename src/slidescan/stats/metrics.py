"""Classifier figures of merit used in this field: AUC and the significance improvement (SIC)."""

from __future__ import annotations

import numpy as np


def roc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points (background and signal efficiency, weighted when ``weights`` are given) and the number of
    background events passing each cut: the floors below count events, since a SIC on few events is noise
    whatever their weights."""
    from sklearn.metrics import roc_curve

    labels, scores = np.asarray(labels), np.asarray(scores)
    fpr, tpr, thresholds = roc_curve(labels, scores, sample_weight=weights)
    background = np.sort(scores[labels == 0])
    passing = len(background) - np.searchsorted(background, thresholds, side="left")
    return fpr, tpr, passing


def sic_figures(labels: np.ndarray, scores: np.ndarray, floors: tuple[int, ...] = (20, 50),
                efficiencies: tuple[float, ...] = (0.2, 0.3), weights: np.ndarray | None = None) -> dict:
    """AUC; max SIC = max eps_s / sqrt(eps_b) over cuts that keep at least ``floor`` background events
    (below that the ratio is noise); SIC at fixed signal efficiencies, NaN where that cut keeps fewer background
    events than the lowest floor (a tree ensemble's tied top scores can keep none: eps_b = 0 is no infinite SIC).
    Efficiencies are weighted by ``weights``."""
    from sklearn.metrics import roc_auc_score

    fpr, tpr, passing = roc(labels, scores, weights)
    out = {"auc": float(roc_auc_score(labels, scores, sample_weight=weights))}
    for floor in floors:
        ok = (passing >= floor) & (fpr > 0)
        out[f"max_sic_{floor}"] = float(np.max(tpr[ok] / np.sqrt(fpr[ok]))) if ok.any() else float("nan")
    for eff in efficiencies:
        b = float(np.interp(eff, tpr, fpr))
        kept = float(np.interp(eff, tpr, passing))
        out[f"sic_at_{eff}"] = eff / np.sqrt(b) if b > 0 and kept >= min(floors) else float("nan")
    return out
