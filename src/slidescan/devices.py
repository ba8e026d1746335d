"""Where a model trains and in which precision (torch is imported by the jobs that train only)."""

from __future__ import annotations

import torch

# Lightning's names: "32", or bf16 autocast of the matmuls with the losses in float32
PRECISIONS = {"32": None, "bf16-mixed": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto``: the GPU when there is one; else ``cpu``, ``cuda`` or ``cuda:N`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(precision: str, device: torch.device):
    """The autocast context of a precision setting (a no-op for "32")."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
