"""The flow of the simulated background: p(features | mjj) fitted on the scan's simulation over the whole window.

For methods that score data by a background density learned elsewhere than in the data's own
sidebands (flow-nll with ``background: simulation``, as in likelihood-based searches). The
simulated background is the scan's simulation sample (``data.samples.simulation``: generated with a
mismodelling preset, or a file of simulated events), restricted to the window, not a truth copy of the
data's own background: a simulation that mismodels the data shows up as data the flow finds unlikely, as
it would in a real search. The flow never sees a data event, so data in the sidebands and in the SR are
scored alike, and it is fitted once per window (``window_alone``): every injection and seed reads the same flow,
as FETA does for its morphing (``density.feta``).
"""

from __future__ import annotations


from ..windows import ANY_REGION, REGION_SR
from . import Model, ModelContext, ModelResult, register_model
from .flow_settings import FlowSettings
from .sideband_flow import closure, fit_flow_on, fit_flows_on, history_table, training_events


def _simulated(ctx: ModelContext):
    # the window's events of the sample, every region (the sample's split leaves out the events outside it)
    simulated = ctx.samples["simulation"].reset_index(drop=True)
    ctx.log(f"{ctx.window.name}: flow on {len(simulated)} simulated background events of the window "
            "(data.samples.simulation)")
    return simulated


def fit(ctx: ModelContext) -> ModelResult:
    flow, simulated = fit_flow_on(ctx, _simulated(ctx))
    return _result(ctx, flow, simulated)


def fit_many(contexts: list[ModelContext], members: int) -> list[ModelResult]:
    events = [training_events(ctx, _simulated(ctx)) for ctx in contexts]
    return [_result(ctx, flow, ev) for ctx, flow, ev in zip(contexts, fit_flows_on(contexts, events, members), events)]


def _result(ctx: ModelContext, flow, simulated) -> ModelResult:
    w = ctx.window
    held, samples, auc = closure(ctx, flow, simulated)
    held = held.assign(region=simulated["region"].to_numpy()[flow.validation_index])  # FETA's sideband closure
    sr = held[held["region"] == REGION_SR]
    sr_samples = samples[(held["region"] == REGION_SR).to_numpy()]

    def plot(path):
        from ..plots import flow_closure

        flow_closure(held, samples, sr, sr_samples, f"{w.name} ({w.label}), simulation: "
                     f"closure AUC {auc:.3f}", path, rows=("simulation (held out), whole window",
                                                           "simulation (held out), signal region"))

    return ModelResult(tables={"sim_data": held, "sim_samples": samples},
                       attrs={"sim_auc": auc, "best_val_nll": flow.best_val_loss, "n_train": len(simulated),
                              **flow.attrs()},
                       arrays=flow.arrays(), history=history_table(flow), plot=plot)


CAPTION = """A conditional normalizing flow p(features | mjj) trained on the simulated background of the whole window
(``data.samples.simulation``), once per window: the background density of flow-nll with ``background: simulation``
and FETA's simulation flow. **Top row:** held-out simulated events against flow samples at the same mjj, with the
closure AUC of a boosted-tree classifier (0.50: indistinguishable). **Bottom row:** the same in the signal region.
How the simulation differs from the data is on the templates' page."""

register_model(Model("simulation_flow", "Flow of the simulated background", fit, FlowSettings, fit_many=fit_many,
                     caption=CAPTION, samples=("simulation",), window_alone=True, regions=ANY_REGION))
