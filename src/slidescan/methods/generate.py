"""Generate (Bai, Mastandrea, Nachman, arXiv:2311.12924): SR data against samples of the data's flow p(x | m)
learned outside the SR, drawn at SR conditions m of the simulation reweighted to the data.

CATHODE's template with the SR's conditions from the simulation, P_sim(m) w(m) (the ``generate`` model), instead of
from the SR data, whose context a non-resonant signal shares. Needs ``data.samples.simulation``.

Calibration (docs/benchmarks.md, 80 injection-0 p0): a flow conditioned on ht and met is sampled in the SR's
high-met corner, past its training range, and is off more there than in a validation region one step below
(largest Z 6.0-6.3 even with ``windows.validation``): not calibrated. Conditioned on ht alone
(``windows.condition: [ht]``: the features depend on met only through ht, so the flow interpolates) and with the
validation region it is (largest Z 1.75 mistuned, 2.22 tuned). Run the calibration first.
"""

from . import register
from ..windows import ANY_REGION
from .base import template_reference

register(template_reference("generate", "SR data vs CR-flow samples at the reweighted simulation's SR conditions "
                            "(Generate)", "generate", "samples", regions=ANY_REGION))
