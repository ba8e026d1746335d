"""Classifier figures of merit used in this field: AUC and the significance improvement (SIC)."""

from __future__ import annotations

import numpy as np


def sic_figures(labels: np.ndarray, scores: np.ndarray, floors: tuple[int, ...] = (20, 50),
                efficiencies: tuple[float, ...] = (0.2, 0.3)) -> dict:
    """AUC; max SIC = max eps_s / sqrt(eps_b) over cuts that keep at least ``floor`` background events
    (below that the ratio is noise); SIC at fixed signal efficiencies."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.asarray(labels)
    fpr, tpr, _ = roc_curve(labels, scores)
    n_bkg = int((labels == 0).sum())
    out = {"auc": float(roc_auc_score(labels, scores))}
    for floor in floors:
        ok = fpr * n_bkg >= floor
        out[f"max_sic_{floor}"] = float(np.max(tpr[ok] / np.sqrt(fpr[ok]))) if ok.any() else float("nan")
    for eff in efficiencies:
        b = float(np.interp(eff, tpr, fpr))
        out[f"sic_at_{eff}"] = eff / np.sqrt(b) if b > 0 else float("inf")
    return out
