"""SALAD's reweighter (arXiv:2001.05001): a classifier of simulation vs data in the sidebands, conditioned on mjj
(or, in a non-resonant search, in the control region, conditioned on the region's context columns: the Reweight
extrapolation of arXiv:2311.12924).

Why a classifier: the likelihood ratio p_data(x | m) / p_sim(x | m) is what turns a simulation into the data's
background, and a classifier of the two, fed the features and mjj, learns it as s / (1 - s). Trained in the
sidebands only, where no signal is expected, and applied at the SR's masses through its mjj input, it
interpolates the mismodelling into the SR: the reweighted SR simulation is SALAD's template. The weights are
normalised so the simulation has the data's sideband yield shape and clipped (a few huge weights would make the
template a handful of events); how many were clipped, their distribution and the sideband closure are in the
model's figure and attributes. The sideband (CR) closure is measured out of fold: the reweighter is fitted twice, each
time on one half of the sideband events (``fold`` parity), and weights the other half, and a second classifier of
reweighted simulation vs data in the sidebands then has an AUC of 0.5 where the reweighting is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import REPLICA_WEIGHT
from ..settings import Settings, section_schema
from ..windows import ANY_REGION, REGION_SR
from . import Model, ModelContext, ModelResult, register_model


@dataclass(frozen=True)
class SaladSettings(Settings):
    section = "salad"
    schema = section_schema("""
description: "SALAD's reweighter: gradient-boosted trees (scikit-learn) of simulation vs data in the sidebands, conditioned on mjj"
properties:
  max_iter: {type: integer, minimum: 1, default: 200, description: "boosting iterations"}
  learning_rate: {type: number, exclusiveMinimum: 0, default: 0.1}
  max_leaf_nodes: {type: integer, minimum: 2, default: 31}
  max_weight: {type: number, exclusiveMinimum: 1, default: 20.0, description: "weights above this (the mean weight is 1) are clipped to it"}
  replicas: {type: integer, minimum: 0, not: {const: 1}, default: 0, description: "bootstrap replicas of the template's weights (the reweighter refitted on resamples of its training events): their spread is the template count's ensemble nuisance; 0: none (the template's statistics only); one replica has no spread, so at least 2"}
""")
    late_defaults = {"replicas": 0}

    max_iter: int
    learning_rate: float
    max_leaf_nodes: int
    max_weight: float
    replicas: int


def _classifier(settings: SaladSettings, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=settings.max_iter, learning_rate=settings.learning_rate,
                                          max_leaf_nodes=settings.max_leaf_nodes, random_state=seed % 2**32)


def inputs_of(features: list[str], window) -> list[str]:
    """What the reweighter sees: the features and the region's condition (mjj, or the context columns)."""
    return [*features, *window.context]


def _x(events: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return events[columns].to_numpy(float)


def reweighter(settings: SaladSettings, data: pd.DataFrame, simulation: pd.DataFrame, columns: list[str], seed: int,
               classifier=None, data_weight: np.ndarray | None = None, sim_weight: np.ndarray | None = None):
    """A classifier of simulation (0) vs data (1) on ``columns``, each class weighted to the same total; its odds
    are the weights. ``classifier``: an unfitted scikit-learn classifier in place of the boosted trees;
    ``data_weight``, ``sim_weight``: per-event multiplicities (a bootstrap's), ones by default."""
    x = np.concatenate([_x(simulation, columns), _x(data, columns)])
    y = np.concatenate([np.zeros(len(simulation)), np.ones(len(data))])
    count = np.concatenate([np.ones(len(simulation)) if sim_weight is None else sim_weight,
                            np.ones(len(data)) if data_weight is None else data_weight])
    balance = count * np.where(y == 1, count.sum() / (2 * count[y == 1].sum()),
                               count.sum() / (2 * count[y == 0].sum()))
    classifier = classifier if classifier is not None else _classifier(settings, seed)
    fit_weight = {f"{classifier.steps[-1][0]}__sample_weight" if hasattr(classifier, "steps") else "sample_weight":
                  balance}
    return classifier.fit(x, y, **fit_weight)


def weights(model, events: pd.DataFrame, columns: list[str]) -> np.ndarray:
    p = np.clip(model.predict_proba(_x(events, columns))[:, 1], 1e-6, 1 - 1e-6)
    return p / (1 - p)


def clip(w: np.ndarray, max_weight: float) -> tuple[np.ndarray, int]:
    """Weights normalised to mean 1 and clipped at ``max_weight``, and how many were clipped."""
    w = w / w.mean()
    return np.minimum(w, max_weight), int((w > max_weight).sum())


def out_of_fold_weights(data: pd.DataFrame, simulation: pd.DataFrame, fit, columns: list[str],
                        max_weight: float) -> np.ndarray:
    """The closure's weights: each half of ``simulation`` (its fold's parity) weighted by a reweighter
    ``fit(data, simulation, half)`` of the other halves of both, so no event is weighted by what it trained."""
    odd_data, odd_sim = data["fold"].to_numpy() % 2 == 1, simulation["fold"].to_numpy() % 2 == 1
    w = np.empty(len(simulation))
    for half in (False, True):
        fitted = fit(data[odd_data != half], simulation[odd_sim != half], half)
        w[odd_sim == half] = weights(fitted, simulation[odd_sim == half], columns)
    return clip(w, max_weight)[0]


def replica_weights(fit, data: pd.DataFrame, simulation: pd.DataFrame, apply_to: pd.DataFrame, columns: list[str],
                    max_weight: float, replicas: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The weights of ``apply_to`` under ``replicas`` reweighters ``fit(data, simulation, r, data_weight,
    sim_weight)``, each fitted on a bootstrap of both training sets: the template's ensemble, as replica weight
    columns.

    Why bootstraps: the template's own statistics (in the template count's variance) miss how much the reweighter
    itself would change with other training events of the same size; refitting on resamples measures it. The
    resample is given as multiplicities (how often each event is drawn, as sample weights), not as copied rows: the
    boosted trees' early stopping holds out a validation split, and copies of one event on both sides of it would
    stop each replica later than the nominal fit (overfitted, the spread too wide and off-centre)."""
    out = {}
    for r in range(replicas):
        data_weight = rng.multinomial(len(data), np.full(len(data), 1.0 / len(data))).astype(float)
        sim_weight = rng.multinomial(len(simulation), np.full(len(simulation), 1.0 / len(simulation))).astype(float)
        out[f"{REPLICA_WEIGHT}{r}"] = clip(weights(fit(data, simulation, r, data_weight, sim_weight), apply_to,
                                                   columns), max_weight)[0]
    return out


def sideband_auc(data: pd.DataFrame, simulation: pd.DataFrame, sim_weights: np.ndarray, columns: list[str],
                 settings: SaladSettings, seed: int) -> float:
    """AUC of (weighted) simulation vs data on ``columns``, 2-fold out of fold: 0.5 where the simulation is the
    data."""
    from sklearn.metrics import roc_auc_score

    x = np.concatenate([_x(simulation, columns), _x(data, columns)])
    y = np.concatenate([np.zeros(len(simulation)), np.ones(len(data))])
    w = np.concatenate([sim_weights * len(data) / sim_weights.sum(), np.ones(len(data))])
    half = np.random.default_rng(seed).random(len(x)) < 0.5
    scores = np.empty(len(x))
    for train in (half, ~half):
        scores[~train] = _classifier(settings, seed).fit(x[train], y[train], sample_weight=w[train]).predict_proba(
            x[~train])[:, 1]
    return float(roc_auc_score(y, scores, sample_weight=w))


def simulation_regions(ctx: ModelContext, what: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The data outside the SR, the simulation outside it and the simulation inside it; at least 50 events each."""
    simulation = ctx.samples["simulation"]
    data_out = ctx.data[ctx.data["region"] != REGION_SR]
    sim_out, sim_sr = simulation[simulation["region"] != REGION_SR], simulation[simulation["region"] == REGION_SR]
    if min(len(data_out), len(sim_out), len(sim_sr)) < 50:
        raise ValueError(f"{what}, {ctx.window.name} ({ctx.window.label}): too few events to reweight "
                         f"({len(data_out)} data and {len(sim_out)} simulated events outside the SR, {len(sim_sr)} "
                         "simulated in it)")
    return data_out, sim_out, sim_sr


def fit(ctx: ModelContext) -> ModelResult:
    s, features = ctx.settings, ctx.features
    columns = inputs_of(features, ctx.window)
    simulation = ctx.samples["simulation"]
    data_sb, sim_sb, sim_sr = simulation_regions(ctx, "salad")
    model = reweighter(s, data_sb, sim_sb, columns, ctx.seed("reweighter"))
    template_w, clipped = clip(weights(model, sim_sr, columns), s.max_weight)
    # the sideband closure, out of fold: each half of the sideband simulation weighted by a reweighter of the other
    closure_w = out_of_fold_weights(data_sb, sim_sb, lambda d, m, half: reweighter(s, d, m, columns,
                                                                                   ctx.seed("closure", half)),
                                    columns, s.max_weight)
    before = sideband_auc(data_sb, sim_sb, np.ones(len(sim_sb)), columns, s, ctx.seed("auc"))
    after = sideband_auc(data_sb, sim_sb, closure_w, columns, s, ctx.seed("auc"))
    outside = ctx.window.outside
    ctx.log(f"{ctx.window.name}: reweighter of {len(sim_sb)} simulated vs {len(data_sb)} data events in the {outside}; "
            f"AUC there {before:.3f} before, {after:.3f} after reweighting (out of fold); {clipped} of {len(sim_sr)} "
            f"SR weights clipped at {s.max_weight:g}" + (f"; {s.replicas} bootstrap replicas" if s.replicas else ""))
    replicas = replica_weights(lambda d, m, r, dw, mw: reweighter(s, d, m, columns, ctx.seed("replica", r),
                                                                  data_weight=dw, sim_weight=mw),
                               data_sb, sim_sb, sim_sr, columns, s.max_weight, s.replicas,
                               np.random.default_rng(ctx.seed("replicas")))
    template = sim_sr.reset_index(drop=True).assign(weight=template_w, label=np.int8(0))
    template = template[list(dict.fromkeys([*features, "mjj", *ctx.window.context, "label", "fold", "weight"]))]
    template = template.assign(**replicas)

    def plot(path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        axes[0].hist(template_w, np.geomspace(max(template_w.min(), 1e-3), s.max_weight * 1.01, 50), histtype="step")
        axes[0].set(xscale="log", yscale="log", xlabel="weight of a simulated SR event (mean 1)", ylabel="events",
                    title=f"{clipped} clipped at {s.max_weight:g}")
        feature = features[0]
        bins = np.linspace(*np.quantile(data_sb[feature], [0.005, 0.995]), 40)
        for events, w, label in ((data_sb, None, "data"), (sim_sb, None, "simulation"),
                                 (sim_sb, closure_w, "simulation, reweighted (out of fold)")):
            axes[1].hist(events[feature], bins, weights=w, density=True, histtype="step", label=label)
        axes[1].set(xlabel=f"{feature} in the {outside}", ylabel="density",
                    title=f"{outside} AUC {before:.3f} -> {after:.3f}")
        axes[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)

    from ..io import content_hash

    return ModelResult({"template": template},
                       {"fingerprint": content_hash(_x(data_sb, columns), _x(simulation, columns),
                                                    extra=("salad", s.max_iter, s.learning_rate, s.max_leaf_nodes,
                                                           s.max_weight, ctx.seed("reweighter"),
                                                           *((s.replicas,) if s.replicas else ()))),
                        "sideband_auc_before": before, "sideband_auc_after": after, "clipped": clipped,
                        "n_template": len(template), "replicas": s.replicas},
                       plot=plot)


CAPTION = """SALAD's reweighter: gradient-boosted trees of simulation vs data in the sidebands, conditioned on mjj; the
odds s / (1 - s) weight the simulated SR events into the template. **Left:** the template's weights (mean 1) and
how many were clipped. **Right:** the first feature in the sidebands: data, simulation, and the simulation
reweighted out of fold, with the AUC of a classifier of simulation vs data before and after (0.50: the reweighted
simulation is the data). An AUC after reweighting well above 0.5 means the template cannot be trusted."""

register_model(Model("salad_weights", "SALAD reweighting of the simulation to the sideband data", fit, SaladSettings,
                     caption=CAPTION, gpu=False, samples=("simulation",),
                     closure="sideband_auc_after", regions=ANY_REGION))
