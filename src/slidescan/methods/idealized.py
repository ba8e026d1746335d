"""The idealized anomaly detector: SR data against an independent sample of true SR background.

Only where the truth is known (synthetic data, labelled LHCO events): the true SR background is the truth reference
set apart from the data's own background (``inputs.truth``), not a simulation. The ceiling of any weakly supervised
template (CATHODE at its best is this).
"""

from ..windows import ANY_REGION
from . import Reference, held_out_fold, register


def build(inputs, fold):
    ref = inputs.truth["background_sr"]
    return inputs.sr(inputs.training_events(fold)), ref[ref["fold"] != fold]


register(Reference("idealized", "SR data vs true SR background (truth known only)", build, needs_truth=True,
                   held_out=lambda inputs, fold: held_out_fold(inputs.truth["background_sr"], fold),
                   regions=ANY_REGION))
