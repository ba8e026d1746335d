"""One training step (gather, forward, backward, optimiser step) replayed as a captured CUDA graph.

Small networks leave a GPU idle: each step launches hundreds of tiny kernels and Python's launch
overhead, not arithmetic, sets the pace (issues 7 and 8). Capturing the whole step once and
replaying it costs one launch per step. The step reads its batch through a fixed index tensor,
so a new batch is one copy into that tensor. The first steps run eagerly on a side stream (CUDA
needs warmed-up libraries before a capture) and count as ordinary training steps, so a graphed
training takes the same steps, in the same order, as an eager one. Batches of another shape (the
last, partial batch of an epoch) run eagerly; the optimiser must be ``capturable`` so that eager
and replayed steps share its state on the device.
"""

from __future__ import annotations

import threading
from typing import Callable

import torch

WARMUP_STEPS = 3
_CAPTURE = threading.Lock()


class GraphedStep:
    """``step(idx) -> loss`` run eagerly, or replayed from a CUDA graph when ``enabled``."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor], enabled: bool):
        self.step = step
        self.enabled = enabled
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_idx: torch.Tensor | None = None
        self.static_loss: torch.Tensor | None = None
        self.warm = 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.step(idx)
        with torch.cuda.device(idx.device):  # streams and graphs belong to the data's GPU (cuda:N)
            return self._graphed(idx)

    def _graphed(self, idx: torch.Tensor) -> torch.Tensor:
        if self.graph is not None:
            if idx.shape != self.static_idx.shape:
                return self.step(idx)
            self.static_idx.copy_(idx)
            self.graph.replay()
            return self.static_loss
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                loss = self.step(idx)
            torch.cuda.current_stream().wait_stream(side)
            return loss
        self.static_idx = idx.clone()
        self.graph = torch.cuda.CUDAGraph()
        # a job with several devices trains one model per device in threads (slidescan.devices): one capture at a
        # time in the process, on a stream of the model's device (torch.cuda.graph's default capture stream is one
        # for the whole process); thread_local, so another thread may allocate or synchronise meanwhile
        with _CAPTURE, torch.cuda.graph(self.graph, stream=torch.cuda.Stream(idx.device),
                                        capture_error_mode="thread_local"):
            self.static_loss = self.step(self.static_idx)
        self.graph.replay()  # the capture recorded the step without running it
        return self.static_loss


def use_graphs(requested: bool, device: torch.device) -> bool:
    """Graphs exist on CUDA only; elsewhere the same step runs eagerly."""
    return bool(requested) and device.type == "cuda"


def adam(params, lr: float, device: torch.device, graphed: bool) -> torch.optim.Adam:
    """Adam with the fused CUDA kernel on GPUs; ``capturable`` keeps its state on the device for graphs."""
    if device.type != "cuda":
        return torch.optim.Adam(params, lr=lr)
    # a tensor learning rate lets a scheduler change it between replays of a captured step
    rate = torch.tensor(lr, device=device) if graphed else lr
    return torch.optim.Adam(params, lr=rate, fused=True, capturable=graphed)


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Change the rate in place where it is a device tensor (a captured step reads it from there)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = value


def keep_rate_on_device(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """After loading a checkpoint saved without graphs, put the rate back on the device.

    A float rate would be frozen into the captured step, and a schedule would silently stop.
    """
    for group in optimizer.param_groups:
        if not isinstance(group["lr"], torch.Tensor):
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
