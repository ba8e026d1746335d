"""Bump hunt statistics: dijet fit of the sidebands, SR prediction, pyhf discovery p-value.

The selected mjj spectrum of a window is fitted outside the SR by a binned Poisson likelihood
(iminuit). The fit's covariance gives the uncertainty of the SR prediction, which enters the pyhf
model as a constrained nuisance (``shapesys``). p0 comes from the q0 test statistic, asymptotically
or, for windows with few events, from pseudo-experiments of the same test (``toy_p0``).
"""

import importlib

# the names of the submodules, imported on first use: pyhf and iminuit cost a job a second or two,
# and the report jobs that need only ``metrics`` or ``performance`` should not pay for them
_WHERE = {"BumpHuntResult": "bumphunt", "bump_hunt": "bumphunt",
          **dict.fromkeys(["FitResult", "bin_integrals", "dijet_density", "fit_dijet", "fit_dijet_ftest", "predict",
                           "window_edges"], "dijet"),
          **dict.fromkeys(["CALCULATORS", "TOYS_BELOW", "asimov_z", "asimov_z_uncertain", "discovery_p0", "on_off",
                           "q0_on_off", "toy_floor", "toy_p0", "z_from_p"], "pvalue")}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
