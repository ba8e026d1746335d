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
from ..settings import section_schema
from . import register
from .anode import AnodeSettings
from .density_scores import SCORE_MJJ_SCHEMA, SRDensityScore

# a signal is a small, narrow component: a smaller flow than the background's, trained faster
SIGNAL_FLOW = {"transforms": 4, "hidden": [64, 64], "epochs": 40, "batch_size": 256, "learning_rate": 0.001,
               "n_best": 5}


@dataclass(frozen=True)
class RanodeSettings(AnodeSettings):
    section = "ranode"
    schema = section_schema(f"""
description: R-ANODE's signal flow p_sig(x | m) and signal fraction w, fitted per fold with the sideband flow fixed
properties:
{FLOW_TRAINING_SCHEMA % SIGNAL_FLOW}
  members: {{type: integer, minimum: 1, default: 1, description: "signal flows per fold (seeds), their densities averaged"}}
{SCORE_MJJ_SCHEMA}
{FLOW_EXECUTION_SCHEMA}
  initial_signal_fraction:
    type: number
    exclusiveMinimum: 0
    exclusiveMaximum: 1
    default: 0.01
    description: "the signal fraction w in the SR where the fit starts (it is fitted with the flow)"
""")

    initial_signal_fraction: float


class Ranode(SRDensityScore):
    name = "ranode"
    description = "fitted signal-to-background likelihood ratio in the SR, background fixed (R-ANODE)"
    settings_type = RanodeSettings
    mixture = True


register(Ranode())
