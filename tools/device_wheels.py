"""The wheels slidescan needs on the lent GPU machine and its image lacks, for the device tool's ``carry``.

    python tools/device_wheels.py                                  # .whl/ for the GPU machine (CPython 3.12)
    python tools/device_wheels.py --python-version 3.11 --dest /tmp/whl311   # the same set for a dry run here

The GPU machine reaches no package index. Its image has PyTorch, numpy, scipy, scikit-learn, h5py,
matplotlib and pytest, but not Snakemake, pyhf, zuko, iminuit, mplhep or PyTables. This walks slidescan's
run dependencies through this environment's installed metadata, so that the versions carried are the
ones tested here, leaves out what the image holds (``IMAGE``), downloads binary wheels for the target
Python and builds the pure-Python packages that are published as source only (connection_pool).
pandas is carried although the image has one: the image's version is unknown, and slidescan is tested
on pandas 3. pulp is left out: Snakemake needs it only for its ILP scheduler and falls back to the greedy
one without it, and its 16 MB would crowd the 64 MiB that a device call can carry.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = "slidescan"
# the image's packages that slidescan's dependencies reach (KINDS.md of the device tool, read 2026-11-17)
IMAGE = {
    "anyio", "attrs", "certifi", "charset-normalizer", "click", "cloudpickle", "contourpy", "cycler", "filelock",
    "fonttools", "fsspec", "h11", "h5py", "httpcore", "httpx", "idna", "jinja2", "joblib", "kiwisolver",
    "markdown-it-py", "markupsafe", "matplotlib", "mdurl", "mpmath", "msgpack", "narwhals", "networkx", "numpy",
    "packaging", "pillow", "psutil", "py-cpuinfo", "pygments", "pyparsing", "python-dateutil", "pyyaml",
    "requests", "rich", "scikit-learn", "scipy", "setuptools", "sympy", "tabulate", "threadpoolctl", "torch",
    "tqdm", "typing-extensions", "urllib3", "wrapt",
}
LEFT_OUT = {"pulp"}
PLATFORMS = ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_24_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_28_x86_64", "manylinux_2_34_x86_64", "manylinux_2_35_x86_64", "manylinux1_x86_64"]


def closure(python_version: str) -> dict[str, str]:
    """Name -> installed version of every run dependency of slidescan (no extras), for Linux on x86-64."""
    env = {"extra": "", "python_version": python_version, "python_full_version": f"{python_version}.0",
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    found, stack = {}, [ROOT]
    while stack:
        name = canonicalize_name(stack.pop())
        if name in found:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed here: install slidescan (pip install -e .) first") from None
        found[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(env):
                stack.append(req.name)
    del found[ROOT]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path(".whl"))
    parser.add_argument("--python-version", default="3.12", help="the GPU machine's Python (3.12)")
    args = parser.parse_args()
    wanted = {n: v for n, v in closure(args.python_version).items() if n not in IMAGE | LEFT_OUT}
    if args.dest.exists():
        shutil.rmtree(args.dest)
    args.dest.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "-q"]
    platforms = [flag for p in PLATFORMS for flag in ("--platform", p)]
    source_only = []
    for name, version in sorted(wanted.items()):
        version = version.split("+")[0]
        got = subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
                              "--python-version", args.python_version, *platforms, "-d", str(args.dest),
                              f"{name}=={version}"], capture_output=True, text=True)
        if got.returncode != 0:
            source_only.append(f"{name}=={version}")
    if source_only:  # pure-Python sdists (a compiled one would fail here, loudly)
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(args.dest), *source_only], check=True)
    wheels = sorted(args.dest.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{len(wheels)} wheels, {size:.1f} MiB in {args.dest} ({len(source_only)} built from source: "
          f"{', '.join(source_only) or 'none'})")
    if len(wheels) != len(wanted):
        raise SystemExit(f"expected {len(wanted)} wheels ({', '.join(sorted(wanted))})")


if __name__ == "__main__":
    main()
