"""Generate's template (arXiv:2311.12924): the data's flow p(x | m), learned outside the SR, sampled in the SR at
conditions m drawn from the simulation reweighted to the data, P_sim(m) w(m).

Why not CATHODE's conditions: CATHODE draws the SR's m from a density estimate of the SR data, which in an mjj
window is harmless (a resonance is narrow in mjj) but in a non-resonant search takes the signal's own context with
it: a semi-visible signal sits at large met, and a template drawn at the data's met would follow it there. The
simulation's SR events, weighted by the context weights w(m) that the CR teaches (``context_weights``), carry no
signal. The flow is the region's sideband flow (``sideband_flow``: in the CR of a threshold region, in the
sidebands of an mjj window); its CR closure is on the template pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data import replica_columns
from ..io import content_hash
from ..settings import Settings, section_schema
from ..windows import ANY_REGION, REGION_SR
from . import Model, ModelContext, ModelResult, register_model
from .sideband_flow import sr_samples


@dataclass(frozen=True)
class GenerateSettings(Settings):
    section = "generate"
    schema = section_schema("""
description: "Generate's template: the sideband (CR) flow sampled at SR conditions drawn from the reweighted simulation"
properties:
  oversampling: {type: number, exclusiveMinimum: 0, default: 4.0, description: "template events per SR data event"}
""")

    oversampling: float


def fit(ctx: ModelContext) -> ModelResult:
    w, s = ctx.window, ctx.settings
    flow = ctx.models["sideband_flow"].density()
    pool = ctx.models["context_weights"].table("sr_simulation")
    sr = ctx.data[ctx.data["region"] == REGION_SR]
    n = int(round(s.oversampling * len(sr)))
    weight = pool["weight"].to_numpy(float)
    # P_sim(m) w(m): the reweighted simulation's SR conditions, drawn with replacement by weight
    picked = ctx.rng("condition").choice(len(pool), n, p=weight / weight.sum())
    rows = pool.iloc[picked]
    samples = sr_samples(ctx, flow, w.condition(rows), 1.0 / s.oversampling, rows)
    # w(m)'s bootstrap replicas (context_weights.replicas) reweight the drawn conditions to each replica's P_sim(m)
    # w_r(m): the template count's ensemble of w(m), not of the flow (one flow is trained per pseudo-experiment)
    for column in replica_columns(pool):
        ratio = pool[column].to_numpy(float)[picked] / weight[picked]
        samples[column] = samples["weight"].to_numpy() * ratio / ratio.mean()
    closure = float(ctx.models["sideband_flow"].attrs["sb_auc"])
    effective = float(weight.sum() ** 2 / (weight ** 2).sum())
    ctx.log(f"{w.name} ({w.label}) injection {ctx.experiment.injection} seed {ctx.experiment.seed}: {n} flow samples "
            f"at conditions of {len(pool)} reweighted simulated SR events ({effective:.0f} effective); flow closure "
            f"outside the SR {closure:.3f}")
    context = [c for c in w.context if c in samples]

    def plot(path):
        from ..plots import feature_histograms

        feature_histograms([(sr, f"SR data ({len(sr)})"), (pool, "SR simulation x w(m)"),
                            (pool.assign(weight=1.0), "SR simulation"), (samples, "template (flow samples)")],
                           list(dict.fromkeys([*context, *ctx.features])),
                           f"{w.name} ({w.label}): Generate's SR template; flow closure AUC outside the SR "
                           f"{closure:.3f}", path, xlabel="{} (SR)")

    return ModelResult({"samples": samples},
                       {"fingerprint": content_hash(samples[[*ctx.features, *replica_columns(samples)]].to_numpy(float),
                                                    extra=("generate",)),
                        "cr_closure_auc": closure, "n_template": n, "effective_conditions": effective},
                       plot=plot)


CAPTION = """Generate's SR template: the data's flow p(features | condition), trained outside the SR (the sideband flow),
sampled at SR conditions drawn from the simulated SR events weighted by w(m) (``context_weights``). Per column: SR
data, the reweighted and the raw SR simulation (the context columns), and the template. At injection 0 the template
should follow the SR data; the title gives the flow's closure AUC outside the SR (0.50: alike)."""

register_model(Model("generate", "Generate: the CR flow sampled at the reweighted simulation's SR conditions", fit,
                     GenerateSettings, caption=CAPTION, gpu=False, models=("sideband_flow", "context_weights"),
                     closure="cr_closure_auc", regions=ANY_REGION))
