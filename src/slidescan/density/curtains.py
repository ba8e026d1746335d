"""CURTAINs' transport (arXiv:2203.09470): the sideband data themselves, moved to SR masses by a conditional flow.

Why transport rather than sample: CATHODE draws new events from the sideband flow; CURTAINs keeps the sideband
events and moves each from its mass m to a mass m' of the SR, so the template inherits the data's own structure
where the flow is imperfect. The transport here is the data's conditional sideband flow used twice, through its
base space: x' = f^-1(f(x | m) | m'), which keeps each event's quantile in p(x | m) and is exact where the flow is
(the "flows for flows" form of CURTAINs, arXiv:2305.04646, with the base density and the transport one flow; the
published CURTAINs trains a separate transport network with an optimal-transport loss, which slidescan does not).
Target masses are drawn from the SR data's mjj like CATHODE's; each transported event keeps its own fold. The
closure test is CURTAINs' own: the lower sideband transported to the upper sideband's masses, against the upper
sideband's data (a classifier AUC of 0.5 where the transport is right).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..windows import REGION_SB_HIGH, REGION_SB_LOW, REGION_SR
from . import Model, ModelContext, ModelResult, register_model
from .sideband_flow import closure_auc


def transport(flow, events: pd.DataFrame, to_mjj: np.ndarray, features: list[str]) -> np.ndarray:
    """The events' features moved from their mjj to ``to_mjj`` through the flow's base space."""
    return flow.from_base(flow.to_base(events[features].to_numpy(float), events["mjj"].to_numpy(float)), to_mjj)


def fit(ctx: ModelContext) -> ModelResult:
    from .flows import sample_sr_mjj

    w, features = ctx.window, ctx.features
    flow = ctx.models["sideband_flow"].density()
    data = ctx.data
    sidebands, sr = data[data["region"] != REGION_SR].reset_index(drop=True), data[data["region"] == REGION_SR]
    mjj = sample_sr_mjj(sr["mjj"].to_numpy(), len(sidebands), w.sr_lo, w.sr_hi, ctx.seed("mjj"))
    template = pd.DataFrame(transport(flow, sidebands, mjj, features), columns=features)
    template = template.assign(mjj=mjj, label=np.int8(0), fold=sidebands["fold"].to_numpy())
    finite = np.isfinite(template[features].to_numpy()).all(1)
    if not finite.all():
        raise FloatingPointError(f"curtains, {w.name}: {int((~finite).sum())} transported events are not finite")
    # the closure: the lower sideband moved to the upper one's masses, against the upper sideband's data
    low, high = data[data["region"] == REGION_SB_LOW], data[data["region"] == REGION_SB_HIGH]
    columns = ["mjj", *features]
    auc = float("nan")
    if min(len(low), len(high)) >= 50:
        targets = ctx.rng("closure").choice(high["mjj"].to_numpy(), len(low))
        moved = pd.DataFrame(transport(flow, low, targets, features), columns=features).assign(mjj=targets)
        auc = closure_auc(high[columns].to_numpy(), moved[columns].to_numpy(), ctx.seed("auc"))
    ctx.log(f"{w.name}: {len(template)} sideband events transported into the SR; closure AUC of the lower sideband "
            f"moved to the upper one vs its data = {auc:.3f}")

    def plot(path):
        from ..plots import feature_histograms

        feature_histograms([(sr, "SR data"), (sidebands, "sideband data"), (template, "transported to the SR")],
                           features, f"{w.name}: sideband data transported into the SR (closure AUC lower -> upper "
                           f"sideband {auc:.3f})", path)

    from ..io import content_hash

    return ModelResult({"template": template},
                       {"fingerprint": content_hash(template[features].to_numpy(), extra=("curtains",)),
                        "closure_auc": auc, "n_template": len(template)}, plot=plot)


CAPTION = """CURTAINs' template: every sideband event moved to a mass drawn from the SR data's mjj through the base space
of the data's conditional sideband flow. Per feature: SR data, sideband data, and the transported events (which
should follow the SR data where there is no signal); the title gives the closure AUC of the lower sideband moved to
the upper sideband's masses against the upper sideband's data (0.50: the transport is right)."""

register_model(Model("curtains_transport", "CURTAINs transport of the sideband data into the SR", fit, gpu=False,
                     caption=CAPTION, models=("sideband_flow",), closure="closure_auc"))
