"""Readers of the LHCO R&D features table and of CATHODE's preprocessed ``.npy`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import COLUMNS
from .synthetic import _order_jets

LHCO_H5_COLUMNS = [
    "pxj1", "pyj1", "pzj1", "mj1", "tau1j1", "tau2j1", "tau3j1",
    "pxj2", "pyj2", "pzj2", "mj2", "tau1j2", "tau2j2", "tau3j2",
]


POLICIES = ("reject", "drop")


def finite_events(table: pd.DataFrame, columns: list[str], source: str, policy: str = "reject",
                  log: Callable[[str], None] = print) -> pd.DataFrame:
    """The events whose ``columns`` are all finite: anything else is rejected (``policy: reject``, naming the
    file, the columns and the counts) or dropped and counted in the log (``policy: drop``)."""
    if policy not in POLICIES:
        raise ValueError(f"data.non_finite: expected one of {POLICIES}, got {policy!r}")
    values = table[columns].to_numpy(float)
    finite = np.isfinite(values)
    if finite.all():
        return table
    per_column = {c: int(n) for c, n in zip(columns, (~finite).sum(0)) if n}
    rows = ~finite.all(1)
    detail = ", ".join(f"{c} ({n})" for c, n in per_column.items())
    if policy == "reject":
        raise ValueError(f"{source}: {int(rows.sum())} of {len(table)} events have non-finite values (NaN or inf) in "
                         f"column(s) {detail}; fix the file, or set data.non_finite: drop to leave those events out")
    log(f"{source}: dropped {int(rows.sum())} of {len(table)} events with non-finite values (NaN or inf) in column(s) "
        f"{detail} (data.non_finite: drop)")
    return table[~rows].reset_index(drop=True)


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
    df["label"] = df["label"].astype(np.int8)
    return df


def lhco_features(table: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Compute the LHCO/CATHODE features from the R&D jet table (GeV in, TeV out).

    A jet with tau1 = 0 has no defined tau21; it is set to 0, as in the LHCO preprocessing.
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
    label = table["label"].to_numpy() if "label" in table.columns else np.zeros(len(table))
    out["label"] = label.astype(np.int8)
    return pd.DataFrame(out)[COLUMNS]


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
    return lhco_features(finite_events(table, checked, str(path), non_finite, log), source=str(path))


