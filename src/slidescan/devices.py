"""Where a model trains and in which precision (torch is imported by the jobs that train only).

A device setting (``classifier.nn.device``, ``flow.device``, ...) is ``auto``, ``cpu``, ``cuda``,
``cuda:N`` or a comma-separated list of these (``cuda:0,cuda:2``). ``auto`` and ``cuda`` mean every
visible GPU (on SLURM the job's, from ``CUDA_VISIBLE_DEVICES``); ``auto`` is the CPU where there is
none. A job whose setting names several devices splits its work into batched models
(:func:`split_models`), gives each model a device (:func:`assign_devices`, balanced by members x
events) and trains one model per device at a time, all devices at once (:func:`run_on_devices`: a
thread per device). A device named twice (``cuda:0,cuda:0``, or ``cpu,cpu`` in the tests) takes two
models at once. Every member is the network it is alone, on whichever device and in whichever model.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, Sequence

import torch

# Lightning's names: "32", or bf16 autocast of the matmuls with the losses in float32
PRECISIONS = {"32": None, "bf16-mixed": torch.bfloat16}

# Held by every section that seeds torch's global generators or draws from them (building a flow, a
# flow's seeded initialisation, its sampling): ``torch.manual_seed`` seeds the CPU and every GPU, so
# without it one device thread's draws could fall between another's seed and its draws.
GLOBAL_RNG = threading.RLock()


def resolve_device(name: str) -> torch.device:
    """The device one model trains on: ``auto`` the GPU when there is one, else ``cpu``; ``cuda`` or ``cuda:N`` as
    given; a list: its first device. A GPU gets its index (the current one for ``cuda``), so a model built in one
    device thread and used in another stays on its own GPU."""
    if "," in str(name):
        name = device_names(name)[0]
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def device_names(setting: str | Sequence[str], cuda_count: int | None = None) -> list[str]:
    """Every device a setting names, in order: ``auto`` and ``cuda`` expand to every visible GPU
    (``cuda_count``: their number, default ``torch.cuda.device_count()``), ``auto`` to ``cpu`` without one.
    Devices of different types in one list (``cpu,cuda:0``) are refused.

    >>> device_names("auto", cuda_count=2), device_names("cuda:1"), device_names("cpu, cpu")
    (['cuda:0', 'cuda:1'], ['cuda:1'], ['cpu', 'cpu'])
    """
    parts = [p.strip() for p in (setting.split(",") if isinstance(setting, str) else setting)]
    parts = [p for p in parts if p]
    if not parts:
        raise ValueError(f"device {setting!r}: no device named (auto, cpu, cuda, cuda:N or a comma-separated list)")
    names = []
    for part in parts:
        if part in ("auto", "cuda"):
            count = torch.cuda.device_count() if cuda_count is None else int(cuda_count)
            if count:
                names += [f"cuda:{i}" for i in range(count)]
            else:  # without a GPU, `cuda` stays itself: torch says why where the model trains, as before
                names.append("cpu" if part == "auto" else "cuda")
            continue
        try:
            names.append(str(torch.device(part)))
        except RuntimeError as err:
            raise ValueError(f"device {setting!r}: {part!r} is not a device (auto, cpu, cuda, cuda:N): {err}") from None
    if len({torch.device(n).type for n in names}) > 1:
        raise ValueError(f"device {setting!r}: the devices of one job must be of one type, got {names}")
    return names


def describe(devices: Sequence[str]) -> str:
    """The devices of a job for its log, with the GPUs SLURM gave it (``CUDA_VISIBLE_DEVICES``) where set."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return ", ".join(devices) + (f"; CUDA_VISIBLE_DEVICES={visible}" if visible is not None else "")


def split_models(groups: Sequence[int], per_model: int, n_devices: int) -> list[list[int]]:
    """The sizes of the consecutive batched models of each group (units that may share a model: the folds of one
    epoch length, the units of a model job).

    At most ``per_model`` units per model (0: no cap). On one device, models of ``per_model`` units in a row
    (the last one smaller), as always, so a job resumed from its checkpoints meets the same models. On
    ``n_devices`` > 1, models of at most the devices' fair share of the units, at least one per device while
    there are units for them, a group's models differing by one unit at most; the models are made a multiple
    of the devices when that shortens the busiest device's work (counted in units, as ``assign_devices``
    spreads them). Extra models go to the groups with the most units per model.

    >>> split_models([10], 4, 1), split_models([10], 4, 2), split_models([5, 1], 0, 2), split_models([9], 0, 4)
    ([[4, 4, 2]], [[3, 3, 2, 2]], [[3, 2], [1]], [[3, 2, 2, 2]])
    """
    groups = [int(n) for n in groups]
    if n_devices <= 1:
        return [[min(per_model or n, n - start) for start in range(0, n, per_model or n)] if n else []
                for n in groups]
    total = sum(groups)
    if not total:
        return [[] for _ in groups]
    per = min(per_model or total, -(-total // n_devices))
    counts = [-(-n // per) for n in groups]

    def more(target: int) -> None:
        while sum(counts) < target:  # one more model for the group whose models are largest (first on ties)
            i = max((j for j, n in enumerate(groups) if counts[j] < n), key=lambda j: (groups[j] / counts[j], -j))
            counts[i] += 1

    def sizes() -> list[list[int]]:
        return [[n // c + (1 if k < n % c else 0) for k in range(c)] if c else [] for n, c in zip(groups, counts)]

    def busiest(split: list[list[int]]) -> int:
        flat = [s for group in split for s in group]
        load = [0] * n_devices
        for size, device in zip(flat, assign_devices(flat, n_devices)):
            load[device] += size
        return max(load)

    more(min(total, n_devices))
    plain = sizes()
    more(min(total, -(-sum(counts) // n_devices) * n_devices))
    rounded = sizes()
    return rounded if busiest(rounded) < busiest(plain) else plain


def assign_devices(costs: Sequence[float], n_devices: int) -> list[int]:
    """The device (an index into the job's devices) of each batched model, ``costs`` its work (members x events).

    Longest first: each model, largest cost first (earlier first on ties), goes to the device with the least work
    so far (the lowest index on ties). Deterministic, so a rerun puts each model where it was.

    >>> assign_devices([4, 3, 3, 2], 2)
    [0, 1, 1, 0]
    """
    if n_devices < 1:
        raise ValueError("assign_devices: no device")
    load = [0.0] * n_devices
    out = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda j: (-float(costs[j]), j)):
        device = min(range(n_devices), key=lambda d: (load[d], d))
        out[i] = device
        load[device] += float(costs[i])
    return out


def fit_on_devices(models: Sequence, costs: Sequence[float], devices: Sequence[str],
                   fit: Callable[[int, object, str], None],
                   announce: Callable[[int, object, str], None] | None = None) -> None:
    """``fit(i, models[i], device)`` for every batched model, each on the device :func:`assign_devices` gives it
    (by ``costs``), one model per device at a time, all devices at once (:func:`run_on_devices`); ``announce`` is
    called first for each, in order, in this thread (the job's log). The training stage and the model stage split
    their work this one way; ``fit`` records its own failures."""
    work: list[list[Callable[[], None]]] = [[] for _ in devices]
    for i, (model, slot) in enumerate(zip(models, assign_devices(costs, len(devices)))):
        if announce is not None:
            announce(i, model, devices[slot])
        work[slot].append(lambda i=i, model=model, device=devices[slot]: fit(i, model, device))
    run_on_devices(devices, work)


def run_on_devices(devices: Sequence[str], work: Sequence[Sequence[Callable[[], None]]]) -> None:
    """Run ``work[d]`` (the tasks of device ``devices[d]``, in order) on every device at once, a thread each.

    A thread on a GPU makes it the thread's current device and works on a stream of its own (two threads on one
    GPU overlap). Returns when every task is done; a task's error is raised after all threads end (tasks that
    must not stop the others catch their own errors).
    """
    errors: list[BaseException] = []

    def worker(device: str, tasks) -> None:
        try:
            with _on(device):
                for task in tasks:
                    task()
        except BaseException as err:  # noqa: BLE001 (raised again in the calling thread)
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(device, tasks), name=f"slidescan-{device}-{i}", daemon=True)
               for i, (device, tasks) in enumerate(zip(devices, work)) if tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@contextlib.contextmanager
def _on(device: str):
    """The context of a device thread: on a GPU, its current device and a stream of its own."""
    device = torch.device(device)
    if device.type != "cuda":
        yield
        return
    torch.cuda.set_device(device)
    stream = torch.cuda.Stream(device)
    with torch.cuda.stream(stream):
        yield
    stream.synchronize()


def autocast(precision: str, device: torch.device):
    """The autocast context of a precision setting (a no-op for "32")."""
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
