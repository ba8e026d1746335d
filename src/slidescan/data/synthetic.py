"""The synthetic LHCO-like generator: QCD-like dijet background and a W' -> X Y signal (docs/synthetic.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import base_section_schema
from ..settings import Settings
from . import COLUMNS, SQRT_S


@dataclass(frozen=True)
class SyntheticModel(Settings):
    """Parameters of the synthetic LHCO-like model; their defaults and meaning are in the schema."""

    section = "data.synthetic.model"
    schema = base_section_schema(section)

    mjj_min: float
    mjj_max: float
    # background mjj density  (1 - x)^p1 / x^p2,  x = mjj / sqrt(s)
    dijet_p1: float
    dijet_p2: float
    # QCD jet mass m = pT * rho with log-normal rho; the median of rho drifts as (mjj/3.5)^(k-1),
    # so jet masses scale as mjj^k: k = 1 is exact scale invariance, k < 1 the slow Sudakov drift
    rho_median: float
    rho_log_sigma: float
    mass_mjj_exponent: float
    # signal W' -> X Y
    m_wprime: float
    m_x: float
    m_y: float
    mjj_resolution: float
    signal_tail_fraction: float


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


def generate_signal(n: int, model: SyntheticModel, rng: np.random.Generator,
                    m_wprime: np.ndarray | None = None) -> pd.DataFrame:
    """W' -> X Y events: narrow mjj peak with a low tail, narrow jet masses, two-prong tau21. ``m_wprime``: each
    event's W' mass (a signal prior spread over the mjj range), else the model's."""
    m_wprime = model.m_wprime if m_wprime is None else np.asarray(m_wprime, float)
    core = rng.normal(m_wprime, model.mjj_resolution * m_wprime, n)
    tail = m_wprime * (1 - rng.exponential(0.08, n))
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




# The presets of a synthetic simulation's mismodelling (data.samples.<name>.mismodelling): per preset, the slope of
# the mjj distortion mjj -> mjj (1 + slope (mjj - PIVOT)) [1/TeV], the power of tau21 -> tau21^power, and the drift of
# the jet-mass scale mj -> mj (1 + drift (mjj - PIVOT)) [1/TeV]. "strong" is the hand-tuned distortion of the
# non-resonant study (arXiv:2311.12924: a slope of 1/6 TeV, tau^1.1) with a jet-mass scale that drifts by 8 % per
# TeV; the slope is anchored at PIVOT, where the study's mjj(1 + mjj/6 TeV) would move every event of a 2.5-6 TeV
# spectrum up by 40-100 % and leave no simulation below 3.5 TeV (docs/synthetic.md, "A simulation").
MISMODELLING = {"none": (0.0, 1.0, 0.0), "mild": (1 / 30, 1.03, 0.02), "strong": (1 / 6, 1.1, 0.08)}
PIVOT = 3.5  # TeV


def mismodel(events: pd.DataFrame, preset: str) -> pd.DataFrame:
    """The events as a simulation with ``preset``'s mismodelling (``MISMODELLING``): the jet masses and tau21 are
    distorted at the event's true mjj, then mjj itself."""
    if preset not in MISMODELLING:
        raise ValueError(f"mismodelling {preset!r}: expected one of {sorted(MISMODELLING)}")
    slope, power, drift = MISMODELLING[preset]
    out = events.copy()
    mjj = out["mjj"].to_numpy(float)
    scale = 1.0 + drift * (mjj - PIVOT)
    out["mj1"] = out["mj1"].to_numpy(float) * scale
    out["delta_mj"] = out["delta_mj"].to_numpy(float) * scale
    for tau in ("tau21_j1", "tau21_j2"):
        out[tau] = out[tau].to_numpy(float) ** power
    out["mjj"] = mjj * (1.0 + slope * (mjj - PIVOT))
    return out


# the mismodelling of a simulation's met per preset: met -> met (1 + k met), k in 1/TeV ("strong": the non-resonant
# study's MET(1 + MET/500 GeV), arXiv:2311.12924)
MET_MISMODELLING = {"none": 0.0, "mild": 0.4, "strong": 2.0}


def mismodel_context(events: pd.DataFrame, preset: str) -> pd.DataFrame:
    """A simulation's met mismodelled by ``preset`` (``MET_MISMODELLING``); events without met are returned as
    they are. (ht is drawn from the simulated event's mjj, so it follows that mjj's mismodelling.)"""
    if "met" not in events:
        return events
    met = events["met"].to_numpy(float)
    return events.assign(met=met * (1.0 + MET_MISMODELLING[preset] * met))


def add_context(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The context columns of a non-resonant search, in TeV (docs/synthetic.md, "Non-resonant context").

    ht, the scalar sum of the jets' pT plus soft activity: mjj times U(0.8, 1.0) plus an exponential of mean
    50 GeV, for background and signal alike. met: for QCD, mismeasurement that grows with the activity, an
    exponential of mean 20 GeV + 1.5 % of ht (about 65 GeV at ht = 3 TeV); for the signal, semi-visible jets whose
    invisible fraction shows as met = ht times Beta(2, 6) (mean a quarter of ht). A high corner in (ht, met) is
    then a signal region where the background is a steep extrapolation from below in met.
    """
    n = len(df)
    signal = df["label"].to_numpy() == 1
    ht = df["mjj"].to_numpy(float) * rng.uniform(0.8, 1.0, n) + rng.exponential(0.05, n)
    met_qcd = rng.exponential(1.0, n) * (0.02 + 0.015 * ht)
    met_signal = ht * rng.beta(2.0, 6.0, n)
    return df.assign(ht=ht, met=np.where(signal, met_signal, met_qcd))


def generate_simulation(n: int, model: SyntheticModel, preset: str, rng: np.random.Generator) -> pd.DataFrame:
    """A simulated background: the background model drawn anew (its own random stream), mismodelled by ``preset``."""
    return mismodel(generate_background(n, model, rng), preset)


def add_extra_features(df: pd.DataFrame, substructure: bool, noise: int, rng: np.random.Generator,
                       context: bool = False) -> pd.DataFrame:
    """The optional columns of the feature-set studies, drawn from their own random stream (the baseline
    columns stay those of a sample without them).

    ``substructure``: ``mj2`` and tau_N^beta of both jets for N <= 9, beta in {0.5, 1, 2}, and the
    ratios tau_N,N-1 (names in ``slidescan.features``). tau1 follows the jet's mass over pT (25 %
    log-normal); tau2 = tau21 * tau1; each further ratio is 0.3 times the one before plus 0.7 times a
    fresh Beta draw. The fresh part of tau32 is Beta(7, 2.5) for two-prong (signal) jets and Beta(6, 3)
    for QCD: with tau1 (mass over pT) the only information the extended sets add, by construction.
    tau^beta = (tau^1)^beta times a 10 % log-normal smearing.
    ``noise``: ``noise1`` ... standard normal, independent of everything.
    ``context``: ``ht`` and ``met`` (``add_context``), drawn after the others.
    """
    from ..features import BETAS, ratio, tau

    n, out = len(df), {}
    if substructure:
        signal = df["label"].to_numpy() == 1
        masses = {1: df["mj1"].to_numpy(float), 2: (df["mj1"] + df["delta_mj"]).to_numpy(float)}
        out["mj2"] = masses[2]
        pt = df["mjj"].to_numpy(float) / 2
        for j in (1, 2):
            taus = {1: 0.5 * masses[j] / pt * np.exp(0.25 * rng.standard_normal(n))}
            r = df[f"tau21_j{j}"].to_numpy(float)
            taus[2] = r * taus[1]
            for k in range(3, 10):
                a, b = ((7.0, 2.5), (6.0, 3.0)) if k == 3 else ((7.0, 2.3), (7.0, 2.3))
                fresh = np.where(signal, rng.beta(a[0], a[1], n), rng.beta(b[0], b[1], n))
                r = np.clip(0.3 * r + 0.7 * fresh, 1e-4, 1.0)
                taus[k] = r * taus[k - 1]
            for k in range(1, 10):
                for beta in BETAS:
                    smear = 1.0 if beta == 1.0 else np.exp(0.1 * rng.standard_normal(n))
                    out[tau(k, j, beta)] = taus[k] ** beta * smear
                if k > 1:
                    out[ratio(k, j)] = taus[k] / taus[k - 1]
        out.pop("tau21_j1", None), out.pop("tau21_j2", None)
    for i in range(1, noise + 1):
        out[f"noise{i}"] = rng.standard_normal(n)
    if out:
        extra = pd.DataFrame(out, index=df.index)
        df = pd.concat([df.drop(columns=[c for c in extra.columns if c in df.columns]), extra], axis=1)
    return add_context(df, rng) if context else df
