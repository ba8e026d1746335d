"""Event samples: the synthetic LHCO-like generator, readers for LHCO files, signal injection.

Every sample is a DataFrame with the LHCO / CATHODE columns ``mjj, mj1, delta_mj, tau21_j1,
tau21_j2`` (masses in TeV; ``mj1`` is the lighter jet, ``tau21_j1`` its N-subjettiness ratio)
plus ``label`` (1 signal, 0 background; truth, used only by methods that declare they need it).
The synthetic model is documented in ``docs/synthetic.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .settings import from_config

FEATURES = ["mj1", "delta_mj", "tau21_j1", "tau21_j2"]
COLUMNS = ["mjj", *FEATURES, "label"]
SQRT_S = 13.0  # TeV
LHCO_H5_COLUMNS = [
    "pxj1", "pyj1", "pzj1", "mj1", "tau1j1", "tau2j1", "tau3j1",
    "pxj2", "pyj2", "pzj2", "mj2", "tau1j2", "tau2j2", "tau3j2",
]


@dataclass(frozen=True)
class SyntheticModel:
    """Parameters of the synthetic LHCO-like model (see docs/synthetic.md)."""

    mjj_min: float = 2.5
    mjj_max: float = 6.0
    # background mjj density  (1 - x)^p1 / x^p2,  x = mjj / sqrt(s)
    dijet_p1: float = 8.0
    dijet_p2: float = 4.0
    # QCD jet mass m = pT * rho with log-normal rho; the median of rho drifts as (mjj/3.5)^(k-1),
    # so jet masses scale as mjj^k: k = 1 is exact scale invariance, k < 1 the slow Sudakov drift
    rho_median: float = 0.1
    rho_log_sigma: float = 0.8
    mass_mjj_exponent: float = 0.7
    # signal W' -> X Y -> (qq)(qq)
    m_wprime: float = 3.5
    m_x: float = 0.5
    m_y: float = 0.1
    mjj_resolution: float = 0.027
    signal_tail_fraction: float = 0.15

    @classmethod
    def from_config(cls, config: dict | None) -> "SyntheticModel":
        return from_config(cls, config, "data.synthetic.model")


def _sample_dijet_mjj(n: int, model: SyntheticModel, rng: np.random.Generator) -> np.ndarray:
    grid = np.linspace(model.mjj_min, model.mjj_max, 20001)
    x = grid / SQRT_S
    pdf = (1 - x) ** model.dijet_p1 / x**model.dijet_p2
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, grid)


def _order_jets(m_a, m_b, tau_a, tau_b) -> dict[str, np.ndarray]:
    a_lighter = m_a <= m_b
    return {
        "mj1": np.where(a_lighter, m_a, m_b),
        "delta_mj": np.abs(m_a - m_b),
        "tau21_j1": np.where(a_lighter, tau_a, tau_b),
        "tau21_j2": np.where(a_lighter, tau_b, tau_a),
    }


def generate_background(n: int, model: SyntheticModel, rng: np.random.Generator) -> pd.DataFrame:
    """QCD-like dijet events: falling mjj, broad jet masses that grow with mjj, one-prong tau21."""
    mjj = _sample_dijet_mjj(n, model, rng)
    pt = mjj / 2
    drift = (mjj / 3.5) ** (model.mass_mjj_exponent - 1.0)
    # truncated (resampled, not clipped: a clip would pile events up at a mass that tracks mjj)
    from scipy.stats import truncnorm

    z = truncnorm.rvs(-3.0, 2.0, size=(n, 2), random_state=rng)
    rho = model.rho_median * drift[:, None] * np.exp(model.rho_log_sigma * z)
    masses = pt[:, None] * rho
    # tau21 of QCD jets: broad, one-prong-like, slightly lower for heavier jets
    rel = np.log(masses / (pt[:, None] * model.rho_median))
    alpha = 4.0 - 1.2 * rel
    tau = rng.beta(np.clip(alpha, 1.5, None), 3.0)
    out = {"mjj": mjj, **_order_jets(masses[:, 0], masses[:, 1], tau[:, 0], tau[:, 1])}
    out["label"] = np.zeros(n, dtype=np.int8)
    return pd.DataFrame(out)[COLUMNS]


def generate_signal(n: int, model: SyntheticModel, rng: np.random.Generator) -> pd.DataFrame:
    """W' -> X Y events: narrow mjj peak with a low tail, narrow jet masses, two-prong tau21."""
    core = rng.normal(model.m_wprime, model.mjj_resolution * model.m_wprime, n)
    tail = model.m_wprime * (1 - rng.exponential(0.08, n))
    mjj = np.where(rng.random(n) < model.signal_tail_fraction, tail, core)
    m_y = model.m_y * rng.normal(1.05, 0.08, n)
    m_x = model.m_x * rng.normal(0.98, 0.05, n)
    # part of the X decay products falls outside the jet in some events
    partial = rng.random(n) < 0.2
    m_x = np.where(partial, m_x * rng.uniform(0.3, 0.85, n), m_x)
    tau_y = rng.beta(3.5, 5.0, n)
    tau_x = rng.beta(2.0, 6.0, n)
    out = {"mjj": mjj, **_order_jets(np.abs(m_y), np.abs(m_x), tau_y, tau_x)}
    out["label"] = np.ones(n, dtype=np.int8)
    return pd.DataFrame(out)[COLUMNS]


def read_cathode_npy(path: str | Path) -> pd.DataFrame:
    """Read a CATHODE preprocessed ``.npy`` file: columns mjj, mj1, delta_mj, tau21_j1, tau21_j2, label."""
    path = Path(path)
    array = np.load(path)
    if array.ndim != 2 or array.shape[1] != len(COLUMNS):
        raise ValueError(
            f"{path}: expected a 2-D array with {len(COLUMNS)} columns ({', '.join(COLUMNS)}), "
            f"got shape {array.shape}"
        )
    df = pd.DataFrame(array, columns=COLUMNS)
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


def read_lhco_h5(path: str | Path) -> pd.DataFrame:
    """Read the LHCO R&D ``events_anomalydetection_v2.features.h5`` (pandas table) into features."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: LHCO features file does not exist")
    try:
        table = pd.read_hdf(path)
    except (ValueError, KeyError, OSError) as err:
        raise ValueError(f"{path}: not a readable pandas HDF5 table ({err})") from err
    return lhco_features(table, source=str(path))


def inject(
    background: pd.DataFrame, signal_pool: pd.DataFrame, n_signal: int, rng: np.random.Generator
) -> pd.DataFrame:
    """All background plus ``n_signal`` signal events drawn from the pool without replacement.

    ``event_id`` identifies each event (background first, then signal by pool index), so folds
    and scores can be traced back to the source events.
    """
    if n_signal > len(signal_pool):
        raise ValueError(
            f"injection of {n_signal} signal events asks for more than the signal pool holds "
            f"({len(signal_pool)}); raise data.signal_pool or lower the injection"
        )
    picked = np.sort(rng.choice(len(signal_pool), size=n_signal, replace=False))
    bkg = background.assign(event_id=np.arange(len(background), dtype=np.int64))
    sig = signal_pool.iloc[picked].assign(event_id=len(background) + picked.astype(np.int64))
    return pd.concat([bkg, sig], ignore_index=True)
