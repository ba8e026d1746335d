"""Morph (Bai, Mastandrea, Nachman, arXiv:2311.12924): SR data against the simulation's SR events, morphed onto the
data by a flow learned outside the SR and weighted to the data's context.

FETA's morphing (arXiv:2212.11285, the ``feta`` model) moves the simulated features onto the data's at each m; the
context weights w(m) (``context_weights``) make the simulation's distribution of m the data's, as the study's
"FETA + SALAD". Needs ``data.samples.simulation``.

Calibration (docs/benchmarks.md, 80 injection-0 p0): conditioned on ht and met, FETA's map is applied in the SR's
high-met corner, past where the CR trained it, and the template is 20-40 % off after a cut whichever the simulation
(largest Z 6.60 with a validation region); conditioned on ht alone (``windows.condition: [ht]``: the features depend
on met only through ht) and with ``windows.validation``, the KS test passes with both simulations (largest Z 1.90
mistuned, 3.11 tuned: one p0 of 80 past 3). Run the calibration first.
"""

from . import register
from ..data import replica_columns
from ..windows import ANY_REGION
from .base import WindowInputs, template_reference


def template(inputs: WindowInputs):
    morphed = inputs.model("feta").table("template")
    context = inputs.model("context_weights").table("sr_simulation")
    # both are the window's simulated SR events in the sample's order: a model that changed it is caught here
    if len(morphed) != len(context) or not (morphed["fold"].to_numpy() == context["fold"].to_numpy()).all():
        raise ValueError(f"morph, {inputs.window.name}: feta's template ({len(morphed)} events) and context_weights' "
                         f"SR simulation ({len(context)}) are not the same events")
    weight = morphed["weight"].to_numpy() if "weight" in morphed else 1.0
    # w(m)'s bootstrap replicas (context_weights.replicas): the template count's ensemble
    return morphed.assign(**{c: weight * context[c].to_numpy() for c in ["weight", *replica_columns(context)]})


register(template_reference("morph", "SR data vs the simulation morphed onto the data, weighted in its context "
                            "(Morph)", "feta", template, models=("context_weights",), regions=ANY_REGION))
