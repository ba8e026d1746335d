"""R-ANODE (arXiv:2312.11629): fit the signal in the SR as one component of a mixture, no classifier.

In the SR the data density is p_data = w p_sig + (1 - w) p_bkg. p_bkg is the sideband flow
interpolated into the SR, held fixed; the signal flow p_sig and the fraction w are fitted together
by maximum likelihood on the SR data of the other folds. score = log p_sig(x | m) - log p_bkg(x | m),
the learned likelihood ratio. Fitting only the signal, with the background fixed, is what lets it
work at lower S/B than ANODE, whose SR density must also learn the whole background.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..density.flow_settings import FLOW_EXECUTION_SCHEMA, FLOW_TRAINING_SCHEMA
from ..settings import Settings, section_schema
from . import Score, register
from .density_scores import LogRatio, member_checkpoint, sr_fold_data, stacked_history

# a signal is a small, narrow component: a smaller flow than the background's, trained faster
SIGNAL_FLOW = {"transforms": 4, "hidden": [64, 64], "epochs": 40, "batch_size": 256, "learning_rate": 0.001,
               "n_best": 5}


@dataclass(frozen=True)
class RanodeSettings(Settings):
    section = "ranode"
    schema = section_schema(f"""
description: R-ANODE's signal flow p_sig(x | m) and signal fraction w, fitted per fold with the sideband flow fixed
properties:
{FLOW_TRAINING_SCHEMA % SIGNAL_FLOW}
  initial_signal_fraction:
    type: number
    exclusiveMinimum: 0
    exclusiveMaximum: 1
    default: 0.01
    description: "the signal fraction w in the SR where the fit starts (it is fitted with the flow)"
  members: {{type: integer, minimum: 1, default: 1, description: "signal flows per fold (seeds), their densities averaged"}}
{FLOW_EXECUTION_SCHEMA}
""")

    transforms: int
    hidden: list[int]
    epochs: int
    batch_size: int
    learning_rate: float
    lr_schedule: str
    validation_fraction: float
    n_best: int
    initial_signal_fraction: float
    members: int
    cuda_graphs: bool
    device: str
    threads: int


class Ranode(Score):
    name = "ranode"
    description = "fitted signal-to-background likelihood ratio in the SR, background fixed (R-ANODE)"
    models = ("sideband_flow",)
    settings_type = RanodeSettings

    def fold_data(self, inputs, fold, settings):
        return sr_fold_data(inputs, fold, self.models)

    def fit(self, fits, settings, checkpoint, log):
        from ..density.flows import train_flow

        out = []
        for f in fits:
            train = f.data.train
            background = f.inputs.model("sideband_flow").density()
            log_bkg = background.log_prob(train.x, train.mjj)
            flows = []
            for m, seed in enumerate(f.member_seeds):
                flow = train_flow(train.x, train.mjj, settings, seed, checkpoint=member_checkpoint(checkpoint, m),
                                  log=log, background=log_bkg, signal_fraction=settings.initial_signal_fraction,
                                  what="signal flow")
                log(f"member {m}: fitted signal fraction in the SR {flow.signal_fraction:.4g} "
                    f"({flow.signal_fraction * len(train.x):.0f} of {len(train.x)} training events)")
                flows.append(flow)
            out.append(LogRatio(flows, background, f.inputs.window, f.inputs.features, stacked_history(flows)))
        return out


register(Ranode())
