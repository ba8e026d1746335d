"""The idealized anomaly detector: SR data against an independent sample of true SR background.

Only in simulation; the ceiling of any weakly supervised template (CATHODE at its best is this).
"""

from . import Reference, held_out_fold, register


def build(inputs, fold):
    ref = inputs.tables["background_sr"]
    return inputs.sr(inputs.training_events(fold)), ref[ref["fold"] != fold]


register(Reference("idealized", "SR data vs true SR background (simulation only)", build, needs_truth=True,
                   held_out=lambda inputs, fold: held_out_fold(inputs.tables["background_sr"], fold)))
