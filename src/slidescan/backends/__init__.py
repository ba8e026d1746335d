"""Classifier backends behind one protocol (``base.Backend``): ``nn``, ``bdt``, ``lightning``.

A reference method (how the label-0 template is made) combines with any backend: ``cathode-nn``,
``cathode-bdt``, ``cathode-lightning``. Each backend is one module that registers itself; heavy
libraries (torch, scikit-learn, Lightning) are imported only when a backend fits.
"""

from __future__ import annotations

from ..registry import BACKENDS
from .base import Backend, balanced_weights


def register_backend(backend: Backend) -> Backend:
    """Add a classifier backend to the registry (call it at the bottom of the backend's module)."""
    if not isinstance(backend, Backend):
        raise TypeError(f"register_backend() takes a Backend instance, got {type(backend).__name__}")
    return BACKENDS.register(backend)


from . import bdt, lightning, nn  # noqa: E402,F401  (the built-in backends register themselves)

__all__ = ["Backend", "balanced_weights", "register_backend"]
