"""The supervised classifier: true signal against true SR background, the absolute ceiling (truth known only: ``inputs.truth``)."""

from ..windows import ANY_REGION
from . import Reference, held_out_fold, register


def build(inputs, fold):
    sig, ref = inputs.truth["signal"], inputs.truth["background_sr"]
    return sig[sig["fold"] != fold], ref[ref["fold"] != fold]


register(Reference("supervised", "signal vs SR background with truth (truth known only)", build, needs_truth=True,
                   signal_truth=True,
                   held_out=lambda inputs, fold: held_out_fold(inputs.truth["background_sr"], fold),
                   regions=ANY_REGION))
