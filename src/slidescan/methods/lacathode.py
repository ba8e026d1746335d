"""LaCATHODE (arXiv:2210.14924): CATHODE's classifier trained in the latent space of the sideband flow.

SR data and CATHODE's SR samples are mapped through the sideband flow to its base space, z = f(x | mjj), and the
classifier learns there; every event it scores is mapped the same way (``InputMap``). For background the flow makes
z a standard normal at every mjj, so a cut on the classifier keeps the same fraction of background at every mass and
does not sculpt the sidebands into a bump (CATHODE's classifier, trained in the SR only, may read x's dependence on
mjj). The price in the paper: a little less sensitivity than CATHODE where CATHODE does not sculpt.

The premise holds only as far as the flow maps the SR's background like the sidebands': the bump hunt reads the
sidebands' efficiency of a latent cut as the SR's, and the classifier learns whatever the flow's interpolation into
the SR gets wrong. With the scaled-down default flow and both jet masses as features, that flaw (SR against sideband
data in the latent space: AUC 0.51) made LaCATHODE's injection-0 calibration fail on 20 independent backgrounds
(largest local Z 4.3) where CATHODE's passed (docs/benchmarks.md, issue 30): run the calibration before trusting it.
"""

from . import register
from .base import InputMap, template_reference


def latent_space(inputs) -> InputMap:
    flow = inputs.model("sideband_flow").density()
    features = list(inputs.features)
    columns = [f"latent_{i}" for i in range(len(features))]

    def apply(events):
        z = flow.latent(events[features].to_numpy(float), events["mjj"].to_numpy(float))
        return events.assign(**{c: z[:, i] for i, c in enumerate(columns)})

    return InputMap(apply, columns, ("sideband_flow latent", inputs.model("sideband_flow").fingerprint))


register(template_reference("lacathode", "CATHODE in the sideband flow's latent space (LaCATHODE)", "sideband_flow",
                            "samples", input_map=latent_space))
