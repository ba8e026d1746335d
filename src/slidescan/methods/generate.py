"""Generate (Bai, Mastandrea, Nachman, arXiv:2311.12924): SR data against samples of the data's flow p(x | m)
learned outside the SR, drawn at SR conditions m of the simulation reweighted to the data.

CATHODE's template with the SR's conditions from the simulation, P_sim(m) w(m) (the ``generate`` model), instead of
from the SR data, whose context a non-resonant signal shares. Needs ``data.samples.simulation``.

Calibration (docs/benchmarks.md): its template count is not calibrated with the default flow (largest injection-0
Z 6.0-6.3 of 80 p0 even with ``windows.validation``): the flow is sampled in the SR at conditions past its training
range and is off more there than in a validation region one step below. Its Z are not evidence; run the calibration.
"""

from . import register
from ..windows import ANY_REGION
from .base import template_reference

register(template_reference("generate", "SR data vs CR-flow samples at the reweighted simulation's SR conditions "
                            "(Generate)", "generate", "samples", regions=ANY_REGION))
