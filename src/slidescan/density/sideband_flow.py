"""The sideband flow: p(features | mjj) fitted in a window's sidebands, interpolated into its SR.

CATHODE classifies SR data against its SR samples; ANODE and R-ANODE evaluate its density in the
SR as the background; flow-nll scores events by it. One flow per window and pseudo-experiment,
shared by every method and fold: the flow sees only sideband events, which no fold model scores
as SR data, so a flow per fold would cost k times more for no gain in honesty. Its SR samples get
random folds of their own. Diagnostics: held-out sideband data against flow samples at the same
mjj, SR data against SR samples, and the sideband closure test (a boosted-tree classifier of
held-out sideband data against samples; AUC 0.5 when the flow is right).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import weights_of
from ..windows import ANY_REGION, REGION_SR, assign_folds
from . import Model, ModelContext, ModelResult, register_model
from .flow_settings import FlowSettings


def closure_auc(data: np.ndarray, samples: np.ndarray, seed: int, weight: np.ndarray | None = None) -> float:
    """Test AUC of a boosted-tree classifier trained to tell ``data`` (weighted by ``weight``) from ``samples``
    (half for training)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    x = np.concatenate([data, samples])
    y = np.concatenate([np.ones(len(data)), np.zeros(len(samples))])
    w = None if weight is None else np.concatenate([weight, np.ones(len(samples))])
    test = np.random.default_rng(seed).random(len(x)) < 0.5
    clf = HistGradientBoostingClassifier(max_iter=200, early_stopping=True, random_state=seed % (2**32))
    clf.fit(x[~test], y[~test], sample_weight=None if w is None else w[~test])
    return float(roc_auc_score(y[test], clf.predict_proba(x[test])[:, 1], sample_weight=None if w is None else w[test]))



def training_events(ctx: ModelContext, events: pd.DataFrame) -> pd.DataFrame:
    """At most ``max_train_events`` of ``events`` (a random subset, seeded by the model's key)."""
    limit = ctx.settings.max_train_events
    if limit and len(events) > limit:
        events = events.iloc[np.sort(ctx.rng("subset").choice(len(events), limit, replace=False))]
    return events


def fit_flow_on(ctx: ModelContext, events: pd.DataFrame):
    """The flow of ``events`` (see ``training_events``), seeded by the model's key."""
    from .flows import train_flow

    events = training_events(ctx, events)
    flow = train_flow(events[ctx.features].to_numpy(), ctx.window.condition(events), ctx.settings, ctx.seed(),
                      checkpoint=ctx.checkpoint, log=ctx.log, weight=weights_of(events))
    return flow, events


def fit_flows_on(contexts: list[ModelContext], events: list[pd.DataFrame], members: int) -> list:
    """The flows of many units as batched models of at most ``members`` flows (0: one model); each is the flow
    ``fit_flow_on`` gives (``density.batched``)."""
    from .batched import FlowTask, train_flows

    tasks = [FlowTask(ev[ctx.features].to_numpy(), ctx.window.condition(ev), ctx.seed(), ctx.checkpoint, ctx.log,
                      weight=weights_of(ev)) for ctx, ev in zip(contexts, events)]
    size = members or len(tasks)
    return [flow for start in range(0, len(tasks), size)
            for flow in train_flows(tasks[start:start + size], contexts[0].settings)]


def closure(ctx: ModelContext, flow, train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Held-out training events, flow samples at their condition (mjj, or the region's context columns), and the
    classifier AUC between them."""
    held = train.iloc[flow.validation_index]
    samples = pd.DataFrame(flow.sample(ctx.window.condition(held), ctx.seed("sb")), columns=ctx.features)
    context = [c for c in ctx.window.context if c not in ctx.features]
    for i, column in enumerate(context):
        samples.insert(i, column, held[column].to_numpy())
    columns = [*context, *ctx.features]
    auc = closure_auc(held[columns].to_numpy(), samples.to_numpy(), ctx.seed("auc"), weights_of(held))
    ctx.log(f"sideband closure: classifier AUC of held-out sideband data vs flow samples = {auc:.4f}")
    return held[columns + (["weight"] if "weight" in held else [])], samples, auc


def history_table(flow) -> pd.DataFrame:
    return pd.DataFrame({"epoch": np.arange(1, len(flow.history["val_loss"]) + 1),
                         "train_loss": flow.history["train_loss"], "val_loss": flow.history["val_loss"]})


def _regions(ctx: ModelContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = ctx.data
    sb, sr = data[data["region"] != REGION_SR], data[data["region"] == REGION_SR]
    settings: FlowSettings = ctx.settings
    n_sb = min(len(sb), settings.max_train_events) if settings.max_train_events else len(sb)
    ctx.log(f"{ctx.window.name} injection {ctx.experiment.injection} seed {ctx.experiment.seed}: flow on {n_sb} "
            f"sideband events, sampling {settings.oversampling:g} x {len(sr)} SR events")
    return sb, sr


def fit(ctx: ModelContext) -> ModelResult:
    sb, sr = _regions(ctx)
    flow, sb = fit_flow_on(ctx, sb)
    return _result(ctx, flow, sb, sr)


def fit_many(contexts: list[ModelContext], members: int) -> list[ModelResult]:
    regions = [_regions(ctx) for ctx in contexts]
    events = [training_events(ctx, sb) for ctx, (sb, _) in zip(contexts, regions)]
    flows = fit_flows_on(contexts, events, members)
    return [_result(ctx, flow, sb, sr) for ctx, flow, sb, (_, sr) in zip(contexts, flows, events, regions)]


def sr_samples(ctx: ModelContext, flow, condition: np.ndarray, weight: float,
               rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """A template of the SR: the flow sampled at ``condition`` (one per event), each sample with the context columns
    of ``rows`` (the events whose condition it is, one per sample) or else those of the condition, ``weight``, a fold
    of its own and a negative event id (no data event has one)."""
    w, n = ctx.window, len(condition)
    samples = pd.DataFrame(flow.sample(condition, ctx.seed("sr")), columns=ctx.features)
    if rows is None:  # a condition drawn on its own: only the conditioning columns are known
        rows = pd.DataFrame(condition.reshape(n, -1), columns=list(w.condition_columns))
    context = [c for c in w.context if c not in ctx.features and c in rows]
    for i, column in enumerate(context):
        samples.insert(i, column, rows[column].to_numpy())
    if "mjj" not in samples:  # a region not in mjj, without mjj among the features: the samples have none
        samples.insert(0, "mjj", np.full(n, np.nan))
    samples["label"] = np.zeros(n, dtype=np.int8)
    samples["weight"] = np.full(n, weight)
    samples["fold"] = assign_folds(n, ctx.k, ctx.rng("folds"))
    samples["region"] = np.zeros(n, dtype=np.int8)
    samples["event_id"] = -1 - np.arange(n, dtype=np.int64)
    return samples


def _result(ctx: ModelContext, flow, sb: pd.DataFrame, sr: pd.DataFrame) -> ModelResult:
    """The SR samples (with folds), the closure test and the figure of a trained sideband flow."""
    settings: FlowSettings = ctx.settings
    w = ctx.window
    n = int(round(settings.oversampling * len(sr)))
    condition = w.sample_condition(sr, n, ctx.seed("mjj"), weights_of(sr))
    samples = sr_samples(ctx, flow, condition, 1.0 / settings.oversampling)
    held, closure_samples, sb_auc = closure(ctx, flow, sb)

    def plot(path):
        from ..plots import flow_closure

        flow_closure(held, closure_samples, sr, samples, f"{w.name} ({w.label}), injection "
                     f"{ctx.experiment.injection}, seed {ctx.experiment.seed}: SB classifier AUC {sb_auc:.3f}", path)

    return ModelResult(
        tables={"samples": samples, "sb_data": held, "sb_samples": closure_samples},
        attrs={"sb_auc": sb_auc, "best_val_nll": flow.best_val_loss, "n_train": len(sb), **flow.attrs()},
        arrays=flow.arrays(), history=history_table(flow), plot=plot)


CAPTION = """A conditional normalizing flow p(features | mjj) is trained on the sideband events and sampled in the
signal region; CATHODE classifies SR data against these samples, and ANODE, R-ANODE and flow-nll evaluate
its density in the SR.

**Top row (closure):** each feature of held-out sideband events (black) against flow samples drawn at the same mjj
(blue). They should agree over the whole range, tails included; the title gives the test AUC of a boosted-tree
classifier trained to tell them apart — 0.50 means indistinguishable, above about 0.52 the flow misses structure
that a weakly supervised classifier could mistake for signal.

**Bottom row:** signal-region data against the flow's SR samples (mjj from a density estimate of the SR data).
Without injected signal they should agree as well as in the top row; an injected signal appears as a narrow excess
of data (e.g. at the signal's jet masses). A broad disagreement at injection 0 means the flow does not
interpolate into the SR, and the p-values of the methods that use it are not to be trusted in this window."""

# the paths of scans made before the method layer: flows/, logs/flow/, checkpoints/<window>/flow/
register_model(Model("sideband_flow", "Sideband flow (CATHODE background model)", fit, FlowSettings,
                     fit_many=fit_many, directory="flows", short="flow", caption=CAPTION, weighted=True, closure="sb_auc",
                     regions=ANY_REGION))
