"""The context weights w(m) = P_data(m) / P_sim(m) of a simulation, learned in the control region (arXiv:2311.12924).

Why: the methods that extrapolate a background into the SR from a simulation (Generate, Morph) learn how the data's
features depend on the context m (ht and met, or mjj), but the SR's own distribution of m is unknown where a signal
may sit in it. The simulation knows it, mismodelled; reweighted to the data in the CR it is the best guess: the
study's "SALAD on the context" step. Generate draws the SR conditions of its flow from the reweighted SR simulation;
Morph weights its morphed SR simulation by it.

Why a logistic regression on polynomials of m and not SALAD's boosted trees: the SR of a non-resonant search lies
beyond the CR (the high corner), and trees are constant beyond the last split: they would carry the weight of the
CR's edge into the whole SR. log w(m) as a polynomial (``context_weights.degree``, quadratic by default) continues
the CR's trend smoothly; in an mjj window it interpolates between the sidebands. The closure (``cr_auc_after``) is
the out-of-fold AUC of reweighted simulation vs data in the CR, on m alone: 0.5 where w(m) is right there. Whether
it holds in the SR is the extrapolation's assumption: the injection-0 calibration tests it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..io import content_hash
from ..settings import Settings, section_schema
from ..windows import ANY_REGION
from . import Model, ModelContext, ModelResult, register_model
from .salad import clip, out_of_fold_weights, replica_weights, reweighter, simulation_regions, weights


@dataclass(frozen=True)
class ContextWeightSettings(Settings):
    section = "context_weights"
    schema = section_schema("""
description: "w(m) = P_data(m) / P_sim(m) of the simulation in the context columns (Generate, Morph): a logistic regression on polynomials of m, fitted in the CR"
properties:
  degree: {type: integer, minimum: 1, maximum: 4, default: 2, description: "the polynomial's degree in m (log w(m) is a polynomial of m)"}
  max_weight: {type: number, exclusiveMinimum: 1, default: 20.0, description: "weights above this (the mean weight is 1) are clipped to it"}
  replicas: {type: integer, minimum: 0, not: {const: 1}, default: 0, description: "bootstrap replicas of w(m) (refitted on resamples of the events outside the SR): their spread is the template count's ensemble nuisance for Morph and Generate; 0: none; one replica has no spread, so at least 2"}
""")
    late_defaults = {"replicas": 0}

    degree: int
    max_weight: float
    replicas: int


def context_reweighter(data: pd.DataFrame, simulation: pd.DataFrame, columns: list[str], degree: int,
                       data_weight: np.ndarray | None = None, sim_weight: np.ndarray | None = None):
    """A classifier of simulation vs data on ``columns`` alone whose odds are w(m): log w a polynomial of m."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    pipeline = make_pipeline(StandardScaler(), PolynomialFeatures(degree), LogisticRegression(C=1e4, max_iter=2000))
    return reweighter(None, data, simulation, columns, 0, classifier=pipeline, data_weight=data_weight,
                      sim_weight=sim_weight)


def _auc(data: pd.DataFrame, simulation: pd.DataFrame, sim_weight: np.ndarray, columns: list[str], seed: int) -> float:
    from .salad import SaladSettings, sideband_auc

    trees = SaladSettings(max_iter=100, learning_rate=0.1, max_leaf_nodes=15, max_weight=20.0, replicas=0)
    return sideband_auc(data, simulation, sim_weight, columns, trees, seed)


def fit(ctx: ModelContext) -> ModelResult:
    s, w = ctx.settings, ctx.window
    columns = list(w.context)
    simulation = ctx.samples["simulation"]
    data_cr, sim_cr, sim_sr = simulation_regions(ctx, "context_weights")
    model = context_reweighter(data_cr, sim_cr, columns, s.degree)
    # (unweighted: the model is not ``weighted``, so a scan with event weights refuses the methods that read it)
    sr_w, clipped = clip(weights(model, sim_sr, columns), s.max_weight)
    # the closure, out of fold: each half of the CR simulation weighted by a reweighter of the other half
    closure_w = out_of_fold_weights(data_cr, sim_cr, lambda d, m, half: context_reweighter(d, m, columns, s.degree),
                                    columns, s.max_weight)
    before = _auc(data_cr, sim_cr, np.ones(len(sim_cr)), columns, ctx.seed("auc"))
    after = _auc(data_cr, sim_cr, closure_w, columns, ctx.seed("auc"))
    ctx.log(f"{w.name} ({w.label}): w({', '.join(columns)}) of {len(sim_cr)} simulated vs {len(data_cr)} data events "
            f"outside the SR; AUC on the context {before:.3f} before, {after:.3f} after reweighting (out of fold); "
            f"{clipped} of {len(sim_sr)} SR weights clipped at {s.max_weight:g}")
    keep = list(dict.fromkeys([*ctx.features, "mjj", *columns, "fold"]))
    replicas = replica_weights(lambda d, m, r, dw, mw: context_reweighter(d, m, columns, s.degree, dw, mw), data_cr,
                               sim_cr, sim_sr, columns, s.max_weight, s.replicas,
                               np.random.default_rng(ctx.seed("replicas")))
    table = sim_sr.reset_index(drop=True)[keep].assign(weight=sr_w, **replicas)

    def plot(path):
        from ..plots import feature_histograms

        reweighted = sim_cr.assign(weight=closure_w)
        feature_histograms([(data_cr, "data"), (sim_cr.drop(columns="weight", errors="ignore"), "simulation"),
                            (reweighted, "simulation x w(m), out of fold")], columns,
                           f"{w.name}: context outside the SR, AUC {before:.3f} -> {after:.3f}", path,
                           xlabel="{} (outside the SR)")

    return ModelResult({"sr_simulation": table},
                       {"fingerprint": content_hash(data_cr[columns].to_numpy(float), simulation[columns].to_numpy(float),
                                                    extra=("context_weights", s.degree, s.max_weight,
                                                           *((s.replicas, ctx.seed("replicas")) if s.replicas else ()))),
                        "cr_auc_before": before, "cr_auc_after": after, "clipped": clipped,
                        "sr_weight_max": float(sr_w.max()), "n_sr_simulation": len(table), "replicas": s.replicas},
                       plot=plot)


CAPTION = """The simulation's context weights w(m) = P_data(m) / P_sim(m), a logistic regression on polynomials of the
region's context columns fitted outside the SR: each context column outside the SR for data, simulation, and
simulation reweighted out of fold, with the AUC of a classifier of simulation vs data on the context before and after
(0.50: the reweighted simulation's context is the data's there). Generate draws its SR conditions from the SR
simulation weighted by w(m); Morph weights its morphed SR simulation by it."""

register_model(Model("context_weights", "w(m) of the simulation in the context, learned outside the SR", fit,
                     ContextWeightSettings, caption=CAPTION, gpu=False, samples=("simulation",),
                     closure="cr_auc_after", regions=ANY_REGION))
