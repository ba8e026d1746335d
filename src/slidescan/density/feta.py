"""FETA's morphing (arXiv:2212.11285): the simulation's SR events moved onto the data by a flow trained to morph.

Why a morph rather than a density: the simulation is known everywhere, in the SR too, and is usually close to the
data; what has to be learned from the sidebands and carried into the SR is only the difference. FETA learns it as
a conditional flow M(x | m) whose base density is the simulation's own flow (``simulation_flow``, fitted once per
window on the whole window's simulation and frozen): the data's likelihood in the sidebands,
log p_sim(M(x | m) | m) + log |dM/dx|, is maximised over M alone (``flows.train_flow(base=...)``). M starts as the
identity, so a perfect simulation is left as it is, and only M interpolates into the SR (CATHODE's flow has to
interpolate the whole density). M^-1, applied at the SR's masses to the simulated SR events, is FETA's template.

A morphing that works in the sidebands makes the simulation indistinguishable from the data there: the closure AUC
of held-out simulation, morphed, against the sideband data the morph did not train on, beside the AUC before
morphing, is in the model's figure and attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import weights_of
from ..io import content_hash
from ..settings import section_schema
from ..windows import ANY_REGION, REGION_SR
from . import Model, ModelContext, ModelResult, register_model
from .flow_settings import FLOW_EXECUTION_SCHEMA, FLOW_TRAINING_SCHEMA, FlowTraining
from .sideband_flow import closure_auc, history_table, training_events

# the morph's defaults: a small flow (it learns a correction to a flow that already describes the simulation),
# trained as long as the embedded default's sideband flow
MORPH = {"transforms": 4, "hidden": [32, 32], "epochs": 20, "batch_size": 1024, "learning_rate": 0.001, "n_best": 1}


@dataclass(frozen=True)
class FetaSettings(FlowTraining):
    """The morphing flow's settings (section ``feta``)."""

    section = "feta"
    schema = section_schema(f"""
description: >-
  FETA's morphing flow (zuko MAF) M(x | mjj) onto the simulation's flow, trained on each window's sideband data per
  pseudo-experiment (arXiv:2212.11285); it starts as the identity
properties:
{FLOW_TRAINING_SCHEMA % MORPH}
  max_train_events: {{type: integer, minimum: 0, default: 60000, description: "train on a random subset of at most this many sideband events; 0 = all"}}
{FLOW_EXECUTION_SCHEMA}
""")

    max_train_events: int
    cuda_graphs: bool
    device: str
    threads: int


def morph(morph_flow, events: pd.DataFrame, features: list[str], window=None) -> np.ndarray:
    """The simulated events' features moved onto the data: M^-1(x | m), m the region's condition (``window``'s: mjj,
    or the context columns; mjj without a window)."""
    condition = window.condition(events) if window is not None else events["mjj"].to_numpy(float)
    return morph_flow.morph(events[features].to_numpy(float), condition)


def fit(ctx: ModelContext) -> ModelResult:
    from .flows import train_flow

    features = ctx.features
    simulation = ctx.samples["simulation"]
    sim_sr = simulation[simulation["region"] == REGION_SR].reset_index(drop=True)
    if len(sim_sr) < 50:
        raise ValueError(f"feta, {ctx.window.name}: too few simulated events in the SR ({len(sim_sr)})")
    sim_flow = ctx.models["simulation_flow"].density()
    data_sb = training_events(ctx, ctx.data[ctx.data["region"] != REGION_SR]).reset_index(drop=True)
    ctx.log(f"{ctx.window.name} injection {ctx.experiment.injection} seed {ctx.experiment.seed}: morphing flow onto "
            f"the simulation's flow, trained on {len(data_sb)} sideband events")
    flow = train_flow(data_sb[features].to_numpy(float), ctx.window.condition(data_sb), ctx.settings, ctx.seed(),
                      checkpoint=ctx.checkpoint, log=ctx.log, what="feta morph", weight=weights_of(data_sb),
                      base=sim_flow)
    template = sim_sr.copy()
    template[features] = morph(flow, sim_sr, features, ctx.window)
    # a weighted simulation keeps its events' weights in the template
    template = template.assign(label=np.int8(0))[list(dict.fromkeys([
        *features, "mjj", *ctx.window.context, "label", "fold", *(["weight"] if "weight" in template else [])]))]
    finite = np.isfinite(template[features].to_numpy()).all(1)
    if not finite.all():
        raise FloatingPointError(f"feta, {ctx.window.name}: {int((~finite).sum())} morphed SR events are not finite")
    # the closure: sideband simulation neither flow trained on, morphed, against sideband data the morph did not see
    held = ctx.models["simulation_flow"].table("sim_data")
    held = held[held["region"] != REGION_SR]
    morphed = held.copy()
    morphed[features] = morph(flow, held, features, ctx.window)
    data_held = data_sb.iloc[flow.validation_index]
    columns = list(dict.fromkeys([*ctx.window.context, *features]))
    data_x, data_w = data_held[columns].to_numpy(), weights_of(data_held)
    before = closure_auc(data_x, held[columns].to_numpy(), ctx.seed("auc"), data_w)
    after = closure_auc(data_x, morphed[columns].to_numpy(), ctx.seed("auc"), data_w)
    ctx.log(f"{ctx.window.name}: sideband AUC of simulation vs held-out data {before:.3f} before, {after:.3f} after "
            f"morphing ({len(held)} held-out simulated events); {len(template)} SR events morphed")

    def plot(path):
        from ..plots import feature_histograms

        feature_histograms([(data_held, "data"), (held, "simulation"), (morphed, "simulation, morphed")], features,
                           f"{ctx.window.name}: sideband AUC of simulation vs data {before:.3f} -> {after:.3f}", path,
                           xlabel="{} (sidebands)")

    # the morph's fingerprint holds its data, settings and the simulation flow's; the template adds the SR simulation
    fingerprint = content_hash(sim_sr[[*ctx.window.context, *features]].to_numpy(), extra=("feta", flow.fingerprint))
    return ModelResult({"template": template},
                       {"sideband_auc_before": before, "sideband_auc_after": after, "n_template": len(template),
                        "best_val_nll": flow.best_val_loss, "n_train": len(data_sb), **flow.attrs(),
                        "fingerprint": fingerprint},
                       arrays=flow.arrays(), history=history_table(flow), plot=plot)


CAPTION = """FETA: a conditional flow trained on the sideband data to morph the simulation's flow (``simulation_flow``)
onto them moves the simulated SR events onto the data; the morphed SR simulation is the template. The figure shows
each feature in the sidebands: held-out data, held-out simulation, and the same simulation morphed, with the AUC of a
classifier of simulation vs data before and after morphing (0.50: the morphed simulation is the data there)."""

register_model(Model("feta", "FETA morphing of the simulation onto the sideband data", fit, FetaSettings,
                     caption=CAPTION, samples=("simulation",), models=("simulation_flow",), weighted=True,
                     closure="sideband_auc_after", regions=ANY_REGION))
