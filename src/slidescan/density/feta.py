"""FETA's morphing (arXiv:2212.11285): the simulation's SR events transported onto the data by two flows.

Why two flows: a conditional flow of the simulation, p_sim(x | m), maps each simulated event to a point of its
base space (a standard normal); the inverse of the data's conditional flow, p_data(x | m), maps that point back to
an event. The composition moves the simulation's distribution onto the data's, at every mjj, while keeping each
event's place in it (its quantiles), which is what FETA learns with one flow trained to morph. The data's flow sees
only sidebands: it is the scan's ``sideband_flow`` (shared with CATHODE, ANODE...; this model reads it, so it runs
after). The simulation's is ``simulation_flow``, fitted once per window on the whole window's simulation (the
simulation is known in the SR too, so only the data's side of the map interpolates; every injection and seed reads the
same one). Applied at the SR's masses, the morphed SR simulation is FETA's template. A morphing that works in the sidebands makes the
simulation indistinguishable from the data there: the closure AUC of held-out morphed simulation vs sideband data,
beside the AUC before morphing, is in the model's figure and attributes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..windows import REGION_SR
from . import Model, ModelContext, ModelResult, register_model
from ..io import content_hash
from .sideband_flow import closure_auc


def morph(sim_flow, data_flow, events: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The events' features moved from the simulation onto the data: data_flow^-1(sim_flow(x | m) | m)."""
    mjj = events["mjj"].to_numpy(float)
    return data_flow.from_base(sim_flow.to_base(events[features].to_numpy(float), mjj), mjj)


def fit(ctx: ModelContext) -> ModelResult:
    features = ctx.features
    simulation = ctx.samples["simulation"]
    sim_sr = simulation[simulation["region"] == REGION_SR].reset_index(drop=True)
    data_sb = ctx.data[ctx.data["region"] != REGION_SR]
    if len(sim_sr) < 50:
        raise ValueError(f"feta, {ctx.window.name}: too few simulated events in the SR ({len(sim_sr)})")
    sim_flow, data_flow = ctx.models["simulation_flow"].density(), ctx.models["sideband_flow"].density()
    template = sim_sr.copy()
    template[features] = morph(sim_flow, data_flow, sim_sr, features)
    template = template.assign(label=np.int8(0))[[*features, "mjj", "label", "fold"]]
    # the sideband closure on the simulated events the simulation's flow did not train on
    held = ctx.models["simulation_flow"].table("sim_data")
    held = held[held["region"] != REGION_SR]
    morphed = held.copy()
    morphed[features] = morph(sim_flow, data_flow, held, features)
    columns = ["mjj", *features]
    before = closure_auc(data_sb[columns].to_numpy(), held[columns].to_numpy(), ctx.seed("auc"))
    after = closure_auc(data_sb[columns].to_numpy(), morphed[columns].to_numpy(), ctx.seed("auc"))
    ctx.log(f"{ctx.window.name}: sideband AUC of simulation vs data {before:.3f} before, {after:.3f} after morphing "
            f"({len(held)} held-out simulated events); {len(template)} SR events morphed")
    finite = np.isfinite(template[features].to_numpy()).all(1)
    if not finite.all():
        raise FloatingPointError(f"feta, {ctx.window.name}: {int((~finite).sum())} morphed SR events are not finite")

    def plot(path):
        from ..plots import feature_histograms

        feature_histograms([(data_sb, "data"), (held, "simulation"), (morphed, "simulation, morphed")], features,
                           f"{ctx.window.name}: sideband AUC of simulation vs data {before:.3f} -> {after:.3f}", path,
                           xlabel="{} (sidebands)")

    # what the template depends on besides the flows read (their fingerprints are chained in by the model stage)
    fingerprint = content_hash(sim_sr[["mjj", *features]].to_numpy(), extra=("feta", ctx.window.name))
    return ModelResult({"template": template},
                       {"fingerprint": fingerprint, "sideband_auc_before": before, "sideband_auc_after": after,
                        "n_template": len(template)}, plot=plot)


CAPTION = """FETA: the conditional flow of the simulation (``simulation_flow``), composed with the inverse of the data's
sideband flow, moves the simulated SR events onto the data; the morphed SR simulation is the template. The figure shows each
feature in the sidebands: data, held-out simulation, and the same simulation morphed, with the AUC of a classifier of
simulation vs data before and after morphing (0.50: the morphed simulation is the data there)."""

register_model(Model("feta", "FETA morphing of the simulation onto the sideband data", fit, caption=CAPTION,
                     gpu=False, samples=("simulation",), models=("simulation_flow", "sideband_flow"),
                     closure="sideband_auc_after"))
