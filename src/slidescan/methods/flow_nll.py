"""Flow likelihood (unsupervised): events that a background density finds unlikely are anomalous.

score(x, m) = -log p_bkg(x | m), with p_bkg the window's sideband flow (interpolated into the SR)
or, with ``background: simulation``, a flow of the simulated background of the whole window (as in
likelihood-based searches such as ATLAS's multi-lepton one). No signal hypothesis and no fit per
fold: the density never sees the SR data it scores. It finds what is rare, which is not always what
is signal, so at a fixed S/B it is weaker than the weakly supervised methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..settings import Settings, section_schema
from . import FoldData, Score, TrainingSet, register
from .density_scores import LogRatio

MODEL = {"sidebands": "sideband_flow", "simulation": "simulation_flow"}


@dataclass(frozen=True)
class FlowNllSettings(Settings):
    section = "flow-nll"
    schema = section_schema("""
description: the negative log-likelihood of a background flow as the anomaly score
properties:
  background:
    enum: [sidebands, simulation]
    default: sidebands
    description: "the sideband flow (data), or a flow of the scan's simulation sample (data.samples.simulation) in the window (the flow section's settings)"
""")

    background: str


class FlowNll(Score):
    name = "flow-nll"
    description = "-log p_background(x|m) of a background flow (unsupervised)"
    models = ("sideband_flow",)
    settings_type = FlowNllSettings
    # it trains nothing: the background flow and the bump hunt take the weights (the sideband flow does)
    weighted = True

    def models_for(self, settings) -> tuple[str, ...]:
        return (MODEL[settings.background],)

    def members(self, settings) -> int:
        return 1

    def fold_data(self, inputs, fold, settings):
        model = MODEL[settings.background]
        empty = np.zeros((0, len(inputs.features)))
        return FoldData(TrainingSet(empty, np.zeros(0), np.zeros(0)), inputs.data[inputs.data["fold"] == fold],
                        None, (inputs.model(model).fingerprint,))

    def fit(self, fits, settings, checkpoint, log):
        model = MODEL[settings.background]
        return [LogRatio([f.inputs.model(model).density()], None, f.inputs.window, f.inputs.features, {}, sign=-1.0,
                         at="own") for f in fits]


register(FlowNll())
