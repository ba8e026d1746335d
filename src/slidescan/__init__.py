"""slidescan: sliding-window weakly supervised and density-based resonance searches, at HPC scale.

The public API, for scripts, notebooks and plug-ins:

- the config and the scan: :func:`load_config`, :func:`load_settings`, :class:`ScanSettings`,
  :class:`PseudoExperiment`, :class:`Layout` (every path under ``results/<scan>/``);
- the method layer: :class:`Reference` and :class:`Score` with :func:`register`, per-window models
  (:class:`Model`, :func:`register_model`), classifier backends (:class:`Backend`,
  :func:`register_backend`), and :class:`Settings` for a plug-in's own config section;
- the stages, one module each: ``slidescan.stages.data``, ``.models``, ``.train``, ``.bumphunt``,
  ``.scan``.

Importing it costs no torch, scikit-learn or pyhf: those load in the jobs that train or fit.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("slidescan")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0+unknown"

from .backends import Backend, register_backend  # noqa: E402
from .config import ConfigError, load_config, load_settings  # noqa: E402
from .density import Model, ModelContext, ModelResult, register_model  # noqa: E402
from .layout import Layout, PseudoExperiment  # noqa: E402
from .methods import FoldData, InputMap, Reference, Score, TrainingSet, WindowInputs, method_names, register  # noqa: E402
from .settings import ScanSettings, Settings, section_schema  # noqa: E402

__all__ = ["Backend", "ConfigError", "FoldData", "InputMap", "Layout", "Model", "ModelContext", "ModelResult", "PseudoExperiment",
           "Reference", "ScanSettings", "Score", "Settings", "TrainingSet", "WindowInputs", "__version__", "load_config",
           "load_settings", "method_names", "register", "register_backend", "register_model", "section_schema"]
