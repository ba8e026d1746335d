"""Readers of the LHCO R&D features table and of CATHODE's preprocessed ``.npy`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import COLUMNS
from .checks import check_labels, finite_events, numeric
from .synthetic import _order_jets

LHCO_H5_COLUMNS = [
    "pxj1", "pyj1", "pzj1", "mj1", "tau1j1", "tau2j1", "tau3j1",
    "pxj2", "pyj2", "pzj2", "mj2", "tau1j2", "tau2j2", "tau3j2",
]


def read_cathode_npy(path: str | Path, non_finite: str = "reject", log: Callable[[str], None] = print) -> pd.DataFrame:
    """Read a CATHODE preprocessed ``.npy`` file: columns mjj, mj1, delta_mj, tau21_j1, tau21_j2, label."""
    path = Path(path)
    try:
        array = np.load(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from err
    if array.ndim != 2 or array.shape[1] != len(COLUMNS):
        raise ValueError(
            f"{path}: expected a 2-D array with {len(COLUMNS)} columns ({', '.join(COLUMNS)}), "
            f"got shape {array.shape}"
        )
    df = finite_events(pd.DataFrame(array, columns=COLUMNS), COLUMNS, str(path), non_finite, log)
    df["label"] = check_labels(df["label"].to_numpy(), str(path))
    return df


def lhco_features(table: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Compute the LHCO/CATHODE features from the R&D jet table (GeV in, TeV out).

    A jet with tau1 = 0 has no defined tau21; it is set to 0, as in the LHCO preprocessing. A ``label``
    column must hold 0 or 1 only; a table without one (data) gives features without ``label``.
    """
    missing = [c for c in LHCO_H5_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"{source}: missing LHCO column(s) {missing}; expected {LHCO_H5_COLUMNS} and 'label'")
    j = {}
    for k in (1, 2):
        px, py, pz, m = (table[f"{c}j{k}"].to_numpy(float) for c in ("px", "py", "pz", "m"))
        j[k] = (px, py, pz, m, np.sqrt(px**2 + py**2 + pz**2 + m**2))
    e = j[1][4] + j[2][4]
    p2 = sum((j[1][i] + j[2][i]) ** 2 for i in range(3))
    mjj = np.sqrt(np.clip(e**2 - p2, 0, None)) / 1000.0

    def tau21(k):
        t1 = table[f"tau1j{k}"].to_numpy(float)
        t2 = table[f"tau2j{k}"].to_numpy(float)
        return np.divide(t2, t1, out=np.zeros_like(t1), where=t1 > 0)

    out = {"mjj": mjj, **_order_jets(j[1][3] / 1000.0, j[2][3] / 1000.0, tau21(1), tau21(2))}
    if "label" in table.columns:  # without one, the events are data (no truth): the source decides what that allows
        out["label"] = check_labels(table["label"].to_numpy(), source)
    return pd.DataFrame(out)[[c for c in COLUMNS if c in out]]


def read_lhco_h5(path: str | Path, non_finite: str = "reject", log: Callable[[str], None] = print) -> pd.DataFrame:
    """Read the LHCO R&D ``events_anomalydetection_v2.features.h5`` (pandas table) into features.

    Every jet column (and ``label``) is checked for NaN and inf before the features are computed:
    a NaN would train into NaN scores, an infinite tau1 into a tau21 of 0.
    """
    import tables

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: LHCO features file does not exist")
    try:
        table = pd.read_hdf(path)
    except (ValueError, KeyError, OSError, TypeError, tables.HDF5ExtError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable pandas HDF5 table ({type(err).__name__}: {reason})") from None
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{path}: holds a {type(table).__name__}, not the LHCO features table")
    missing = [c for c in LHCO_H5_COLUMNS if c not in table.columns]
    if missing:
        raise KeyError(f"{path}: missing LHCO column(s) {missing}; expected {LHCO_H5_COLUMNS} and 'label'")
    checked = LHCO_H5_COLUMNS + (["label"] if "label" in table.columns else [])
    table = pd.DataFrame({c: numeric(table[c].to_numpy(), str(path), c) for c in checked})
    return lhco_features(finite_events(table, checked, str(path), non_finite, log), source=str(path))


