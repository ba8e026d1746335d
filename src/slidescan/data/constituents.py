"""Jet constituents to the features of the extended sets: anti-kT R = 1.0 jets, masses, N-subjettiness, EFPs.

The LHCO R&D constituent file (``events_anomalydetection_v2.h5``) holds, per event, up to 700
particles as (pT, eta, phi) in columns 3i, 3i + 1, 3i + 2 (zero-padded; GeV) and the label in the
last column. Each chunk of events is clustered with fastjet (anti-kT, R = 1.0); the two jets of
highest pT are kept, ordered by mass (``j1`` the lighter, as in the LHCO features table).

tau_N^beta = sum_i pT_i min_k dR(i, a_k)^beta / sum_i pT_i R0^beta with R0 = 1.0 (the normalised
measure), dR in rapidity and azimuth, and the axes a_k the N exclusive-kT subjets of the jet's
constituents (exclusive-kT axes, without a one-pass minimisation): the choice of fastjet-contrib's
``ExclusiveKT_Axes`` with ``NormalizedMeasure``. A jet of at most N constituents has tau_N = 0. The
sums run over padded arrays, vectorised over the jets of a chunk; memory is bounded by the chunk.

Optionally (``efp_degree`` D > 0) every energy-flow polynomial of degree 1 <= d <= D of both jets
(``efp{d}_{k}_j{i}``, see ``slidescan.features``), with energyflow's ``EFPSet``: the hadronic measure on
the jet's constituents as (pT, y, phi), z_i = pT_i / sum_j pT_j (kappa = 1, normed) and theta_ij =
sqrt(dy^2 + dphi^2) (beta = 1), the constant degree-0 graph left out. EFPs are a linear basis of the
IRC-safe jet observables (arXiv:1712.07124), so a scan can ask for them instead of a choice of tau_N.
They are computed jet by jet in the chunk's worker, without energyflow's own process pool (the chunks
already fill the cores). energyflow cannot be an extra of the project: its dependency wasserstein
1.1.0 pins numpy < 2, and pip would downgrade numpy under pandas 3; EFPs need only numpy, so it is
installed without dependencies (``EFP_INSTALL``).

``convert`` turns a constituent file into a features table that ``data.source: table`` reads,
chunk by chunk over worker processes, and skips the work when the table is already there for the
same input and settings (``slidescan constituents``).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..features import BETAS, EFP_COUNTS, efps, ratio, tau
from .sources import optional

R = 1.0
N_MAX = 9
PARTICLE_COLUMNS = 3  # pT, eta, phi
EFP_MEASURE = {"measure": "hadr", "coords": "ptyphim", "beta": 1, "kappa": 1, "normed": True}
EFP_INSTALL = "pip install --no-deps energyflow==1.4.0 wasserstein==1.1.0 wurlitzer"
_EFP_SETS: dict = {}  # degree -> (EFPSet, the indices of its graphs in the order of features.efps), per process


def _fastjet():
    what = "clustering jet constituents"
    return optional("awkward", what, "constituents"), optional("fastjet", what, "constituents")


def _energyflow():
    try:
        import energyflow
    except ImportError:
        raise ModuleNotFoundError("energy-flow polynomials (--efp-degree) need the energyflow package, which is not "
                                  "a slidescan extra (its dependency wasserstein 1.1.0 pins numpy<2 and pip would "
                                  f"downgrade numpy); install it without dependencies: {EFP_INSTALL}") from None
    return energyflow


def _efp_set(degree: int):
    """energyflow's EFPSet of d <= ``degree`` and the indices of its graphs of degree >= 1 in column order."""
    if degree not in _EFP_SETS:
        efpset = _energyflow().EFPSet(("d<=", degree), **EFP_MEASURE)
        d = np.asarray(efpset.specs)[:, list(efpset.cols).index("d")]
        order = np.concatenate([np.flatnonzero(d == k) for k in range(1, degree + 1)])
        counts = [int((d == k).sum()) for k in range(1, degree + 1)]
        if counts != list(EFP_COUNTS[:degree]):
            raise RuntimeError(f"energyflow's EFPSet has {counts} EFPs of degree 1..{degree}, expected "
                               f"{list(EFP_COUNTS[:degree])} ({EFP_INSTALL})")
        _EFP_SETS[degree] = efpset, order
    return _EFP_SETS[degree]


def energy_flow_polynomials(ak, constituents, degree: int) -> np.ndarray:
    """(jets, EFPs) of each jet (``constituents``: one list of four-vectors per jet), every EFP of degree 1 <= d <=
    ``degree`` in the order of ``features.efps``; one ``EFPSet.compute`` per jet."""
    efpset, order = _efp_set(degree)
    counts = ak.to_numpy(ak.num(constituents))
    pt, rap, phi = (ak.to_numpy(ak.flatten(x)).astype(np.float64) for x in _rap_phi(ak, constituents))
    particles = np.column_stack([pt, rap, phi])
    ends = np.cumsum(counts)
    out = np.empty((len(counts), len(order)))
    for j, (start, stop) in enumerate(zip(ends - counts, ends)):
        out[j] = np.asarray(efpset.compute(particles[start:stop]))[order]
    return out


def _four_vectors(ak, pt, eta, phi):
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz = pt * np.sinh(eta)
    return ak.zip({"px": px, "py": py, "pz": pz, "E": np.sqrt(px**2 + py**2 + pz**2)}, with_name="Momentum4D")


def _rap_phi(ak, v):
    pt = np.sqrt(v.px**2 + v.py**2)
    rap = 0.5 * np.log(np.maximum(v.E + v.pz, 1e-12) / np.maximum(v.E - v.pz, 1e-12))
    return pt, rap, np.arctan2(v.py, v.px)


def _padded(ak, array, width: int, fill: float = 0.0) -> np.ndarray:
    return ak.to_numpy(ak.fill_none(ak.pad_none(array, width, clip=True), fill)).astype(np.float64)


def subjettiness(ak, fastjet, constituents, n_max: int = N_MAX) -> dict[tuple[int, float], np.ndarray]:
    """tau_N^beta of each jet (``constituents``: one list of four-vectors per jet), for N <= n_max."""
    n_jets = len(constituents)
    counts = ak.to_numpy(ak.num(constituents))
    width = int(counts.max()) if n_jets else 0
    pt, rap, phi = (_padded(ak, x, width) for x in _rap_phi(ak, constituents))
    norm = pt.sum(1) * R  # sum pT_i R0^beta with R0 = 1
    out = {}
    for n in range(1, n_max + 1):
        has = counts > n  # a jet of at most n constituents has tau_n = 0
        values = {beta: np.zeros(n_jets) for beta in BETAS}
        if has.any():
            sequence = fastjet.ClusterSequence(constituents[has], fastjet.JetDefinition(fastjet.kt_algorithm, R))
            with warnings.catch_warnings():  # fastjet warns about exclusive jets whatever the algorithm; this is kt
                warnings.filterwarnings("ignore", message="dcut and exclusive jets")
                axes = sequence.exclusive_jets(n_jets=n)
            _, a_rap, a_phi = (ak.to_numpy(ak.flatten(x)).reshape(-1, n) for x in _rap_phi(ak, axes))
            d_phi = np.abs(phi[has][:, :, None] - a_phi[:, None, :])
            d_phi = np.where(d_phi > np.pi, 2 * np.pi - d_phi, d_phi)
            dr2 = ((rap[has][:, :, None] - a_rap[:, None, :]) ** 2 + d_phi**2).min(2)
            for beta in BETAS:
                values[beta][has] = (pt[has] * dr2 ** (beta / 2)).sum(1) / norm[has]
        for beta in BETAS:
            out[(n, beta)] = values[beta]
    return out


def jet_features(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, first: int = 0, efp_degree: int = 0
                 ) -> pd.DataFrame:
    """Per event (rows of zero-padded (events, particles) arrays in GeV): mjj and the two leading jets'
    masses (TeV) and subjettiness, and their EFPs of degree <= ``efp_degree`` (0: none), the columns of
    ``slidescan.features``; ``first``: the number of the first event, for errors."""
    ak, fastjet = _fastjet()
    if efp_degree:
        _efp_set(efp_degree)  # energyflow's error before the clustering
    real = pt > 0
    counts = real.sum(1)
    particles = _four_vectors(ak, *(ak.unflatten(x[real], counts) for x in (pt, eta, phi)))
    sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, R))
    jets, constituents = sequence.inclusive_jets(), sequence.constituents()
    order = ak.argsort(np.sqrt(jets.px**2 + jets.py**2), axis=1, ascending=False)
    jets, constituents = jets[order][:, :2], constituents[order][:, :2]
    if (ak.to_numpy(ak.num(jets)) < 2).any():
        bad = int(np.argmax(ak.to_numpy(ak.num(jets)) < 2))
        raise ValueError(f"event {first + bad} has fewer than two jets (every event needs a dijet)")
    four = {c: ak.to_numpy(jets[c]) for c in ("px", "py", "pz", "E")}
    mass = np.sqrt(np.clip(four["E"] ** 2 - four["px"] ** 2 - four["py"] ** 2 - four["pz"] ** 2, 0, None)) / 1000
    total = {c: v.sum(1) for c, v in four.items()}
    mjj = np.sqrt(np.clip(total["E"] ** 2 - total["px"] ** 2 - total["py"] ** 2 - total["pz"] ** 2, 0, None)) / 1000
    taus = {}
    for j in (0, 1):
        for key, value in subjettiness(ak, fastjet, constituents[:, j]).items():
            taus[(j, *key)] = value
    lighter = np.where(mass[:, 0] <= mass[:, 1], 0, 1)  # j1 is the lighter jet
    rows = np.arange(len(mjj))
    out = {"mjj": mjj, "mj1": mass[rows, lighter], "mj2": mass[rows, 1 - lighter]}
    out["delta_mj"] = out["mj2"] - out["mj1"]
    for i, which in ((1, lighter), (2, 1 - lighter)):
        for n in range(1, N_MAX + 1):
            for beta in BETAS:
                out[tau(n, i, beta)] = np.where(which == 0, taus[(0, n, beta)], taus[(1, n, beta)])
        for n in range(2, N_MAX + 1):
            num, den = out[tau(n, i)], out[tau(n - 1, i)]
            out[ratio(n, i)] = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    if efp_degree:
        values = [energy_flow_polynomials(ak, constituents[:, j], efp_degree) for j in (0, 1)]
        for i, which in ((1, lighter), (2, 1 - lighter)):
            for c, name in enumerate(efps(efp_degree, jets=(i,))):
                out[name] = np.where(which == 0, values[0][:, c], values[1][:, c])
    return pd.DataFrame(out)


def read_lhco_constituents(path: str | Path, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                            np.ndarray]:
    """Events ``start:stop`` of an LHCO R&D constituent file: pT, eta, phi (events, particles) and the label."""
    table = pd.read_hdf(path, start=start, stop=stop)
    values = table.to_numpy(np.float64)
    n_particles = (values.shape[1] - 1) // PARTICLE_COLUMNS
    if values.shape[1] != n_particles * PARTICLE_COLUMNS + 1 or n_particles < 2:
        raise ValueError(f"{path}: {values.shape[1]} columns; the LHCO constituent layout has 3 per particle "
                         "(pT, eta, phi) and the label last")
    particles = values[:, :-1].reshape(len(values), n_particles, PARTICLE_COLUMNS)
    return particles[..., 0], particles[..., 1], particles[..., 2], values[:, -1].astype(np.int8)


def _chunk(args) -> pd.DataFrame:
    path, start, stop, efp_degree = args
    pt, eta, phi, label = read_lhco_constituents(path, start, stop)
    try:
        df = jet_features(pt, eta, phi, first=start, efp_degree=efp_degree)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    df["label"] = label
    return df


def _events(path: Path) -> int:
    import tables

    with tables.open_file(path) as f:
        for node in f.walk_nodes("/", "Table"):
            return int(node.nrows)
    with pd.HDFStore(path, "r") as store:  # a fixed-format frame
        return int(store.get_storer(store.keys()[0]).shape[0])


def convert(path: str | Path, out: str | Path, chunk_size: int = 2000, workers: int | None = None,
            stop: int | None = None, log: Callable[[str], None] = print, efp_degree: int = 0) -> Path:
    """The features table of a constituent file (``stop``: only the first events; ``efp_degree``: add every EFP of
    degree 1 <= d <= efp_degree of both jets, 0: none), made once: an ``out`` made from the same input (size,
    modification time) and settings is kept."""
    from ..io import atomic_path

    path, out = Path(path), Path(out)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such constituent file")
    if isinstance(efp_degree, bool) or not isinstance(efp_degree, (int, np.integer)) or efp_degree < 0:
        raise ValueError(f"EFP degree {efp_degree!r}: expected a whole number >= 0 (0: no EFPs)")
    efp_degree = int(efp_degree)
    efps(efp_degree)  # at most energyflow's largest degree
    if efp_degree:
        _energyflow()  # its error before anything is read
    stat = path.stat()
    ident = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stop}|R={R}|N<={N_MAX}|exclusive-kT axes"
    if efp_degree:  # a table made without EFPs keeps the identity it had before the option existed
        ident += "|EFP d<={degree} {measure} {coords} beta={beta} kappa={kappa} normed={normed}".format(
            degree=efp_degree, **EFP_MEASURE)
    if out.exists():
        try:
            with pd.HDFStore(out, "r") as store:
                made_from = store.get_storer("events").attrs.slidescan_source
        except (KeyError, AttributeError, OSError, ValueError):
            made_from = None
        if made_from == ident:
            log(f"{out}: already made from {path}; kept")
            return out
    n = _events(path) if stop is None else int(stop)
    starts = list(range(0, n, chunk_size))
    workers = max(1, min(workers or os.cpu_count() or 1, len(starts)))
    log(f"{path}: {n} events in {len(starts)} chunks of {chunk_size} over {workers} processes")
    frames = []
    chunks = [(path, s, min(s + chunk_size, n), efp_degree) for s in starts]
    with ProcessPoolExecutor(workers) as pool:
        for i, frame in enumerate(pool.map(_chunk, chunks), 1):
            frames.append(frame)
            log(f"chunk {i}/{len(starts)}: {sum(len(f) for f in frames)} of {n} events")
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(out) as tmp:
        with pd.HDFStore(tmp, "w") as store:
            store.put("events", table, format="table", track_times=False)
            store.get_storer("events").attrs.slidescan_source = ident
    return out
