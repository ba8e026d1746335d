"""The supervised classifier: true signal against true SR background, the absolute ceiling (simulation only)."""

from . import Reference, held_out_fold, register


def build(inputs, fold):
    sig, ref = inputs.tables["signal"], inputs.tables["background_sr"]
    return sig[sig["fold"] != fold], ref[ref["fold"] != fold]


register(Reference("supervised", "signal vs SR background with truth (simulation only)", build, needs_truth=True,
                   signal_truth=True,
                   held_out=lambda inputs, fold: held_out_fold(inputs.tables["background_sr"], fold)))
