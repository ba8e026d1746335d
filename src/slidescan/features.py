"""The features a scan's classifiers and density models see: named sets or the config's own list of columns.

Every stage reads ``ScanSettings.features`` (resolved here, once) instead of naming columns itself, and
checks the events it reads with ``require``: a feature the input lacks fails with the file and the
columns it does have, before anything trains. The named sets are those of "Back to the Roots"
(arXiv:2309.13111): N-subjettiness ``tau_N^beta`` of both jets (``j1`` the lighter) and their masses.

Column names: ``mj1``, ``mj2`` (TeV), ``delta_mj = mj2 - mj1``; ``tau{N}_j{i}`` for beta = 1,
``tau{N}_b05_j{i}`` and ``tau{N}_b2_j{i}`` for beta = 0.5 and 2; ``tau{N}{N-1}_j{i}`` their ratios
(``tau21_j1`` is tau2 / tau1 of the lighter jet). ``noise{i}`` are the synthetic generator's pure-noise
features (``noise(k)`` lists the first k).

Energy-flow polynomials (``slidescan constituents --efp-degree D``): ``efp{d}_{k}_j{i}`` is the k-th
(from 1) EFP of degree d of jet i, k in energyflow's ``EFPSet`` order among the graphs of degree d
(connected and disconnected; the order is the same whatever D). ``efps(D)`` lists those of both jets
for 1 <= d <= D: 1, 3, 8, 23, ... per degree (``EFP_COUNTS``). The set ``efp3``: the two masses and
the 24 EFPs of d <= 3 (12 per jet).
"""

from __future__ import annotations

BETAS = {0.5: "_b05", 1.0: "", 2.0: "_b2"}


def tau(n: int, jet: int, beta: float = 1.0) -> str:
    return f"tau{n}{BETAS[beta]}_j{jet}"


def ratio(n: int, jet: int) -> str:
    return f"tau{n}{n - 1}_j{jet}"


# EFPs per degree d = 1..10: every multigraph of d edges, connected or not (energyflow's EFPSet has them to d = 10)
EFP_COUNTS = (1, 3, 8, 23, 66, 212, 686, 2389, 8682, 33160)


def efp(d: int, k: int, jet: int) -> str:
    """The column of the k-th (from 1) EFP of degree d of jet ``jet``."""
    return f"efp{d}_{k}_j{jet}"


def efps(degree: int, jets: tuple[int, ...] = (1, 2)) -> list[str]:
    """The columns of every EFP of degree 1 <= d <= ``degree`` of ``jets``: per jet, by degree, then k."""
    if not 0 <= degree <= len(EFP_COUNTS):
        raise ValueError(f"EFP degree {degree}: energyflow has the EFPs of degree 0 to {len(EFP_COUNTS)}")
    return [efp(d, k, j) for j in jets for d in range(1, degree + 1) for k in range(1, EFP_COUNTS[d - 1] + 1)]


SETS: dict[str, list[str]] = {
    # the CATHODE / LHCO features
    "baseline": ["mj1", "delta_mj", "tau21_j1", "tau21_j2"],
    # "Extended 1": the masses and tau_{N,N-1}, 2 <= N <= 5
    "extended1": ["mj1", "mj2", *(ratio(n, j) for j in (1, 2) for n in range(2, 6))],
    # "Extended 2": the masses and tau_N, N <= 5
    "extended2": ["mj1", "mj2", *(tau(n, j) for j in (1, 2) for n in range(1, 6))],
    # "Extended 3": the masses and tau_N^beta, N <= 9, beta in {0.5, 1, 2}
    "extended3": ["mj1", "mj2", *(tau(n, j, b) for j in (1, 2) for b in BETAS for n in range(1, 10))],
    # the masses and every energy-flow polynomial of degree d <= 3 of both jets (slidescan constituents --efp-degree 3)
    "efp3": ["mj1", "mj2", *efps(3)],
}
OWN = ("mjj", "label", "weight", "fold", "region", "event_id")  # the scan's own columns, never features


def noise(k: int) -> list[str]:
    return [f"noise{i}" for i in range(1, k + 1)]


def resolve(spec: str | list, where: str = "features") -> tuple[str, ...]:
    """A set's name, or a list of set names and columns -> the columns, in order, each once."""
    if isinstance(spec, str):
        if spec not in SETS:
            raise ValueError(f"{where}: unknown feature set {spec!r}; expected one of {sorted(SETS)} or a list of "
                             "columns")
        return tuple(SETS[spec])
    out: list[str] = []
    for item in spec:
        out += SETS.get(item, [item])
    columns = tuple(dict.fromkeys(out))
    if not columns:
        raise ValueError(f"{where}: the list of features is empty")
    reserved = [c for c in columns if c in OWN]
    if reserved:
        raise ValueError(f"{where}: {reserved} are not features (mjj, label, weight, fold, region and event_id are "
                         "the scan's own columns)")
    return columns


# which physics object a feature describes: the per-jet methods (an autoencoder of one jet, Tag N' Train) read them
GROUPS = ("jet1", "jet2", "event")


def group_of(column: str) -> str:
    """The group of a column by slidescan's naming: jet1 for ``mj1`` and ``*_j1``, jet2 for ``mj2`` and ``*_j2``,
    else the event (``delta_mj``, ``noise3``, a column of your own)."""
    if column == "mj1" or column.endswith("_j1"):
        return "jet1"
    if column == "mj2" or column.endswith("_j2"):
        return "jet2"
    return "event"


def resolve_groups(spec, where: str = "features") -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The columns of ``features:`` and which of them describe jet 1, jet 2 and the event.

    A set name or a list is grouped by the naming (:func:`group_of`); a mapping ``{jet1: [...], jet2: [...],
    event: [...]}`` (each a list of set names and columns) says it, for columns of your own, and orders the
    columns jet1, jet2, event. Every group is in the result, empty where no column belongs to it.
    """
    if not isinstance(spec, dict):
        columns = resolve(spec, where)
        return columns, {g: tuple(c for c in columns if group_of(c) == g) for g in GROUPS}
    unknown = sorted(set(spec) - set(GROUPS))
    if unknown:
        raise ValueError(f"{where}: unknown group(s) {unknown}; a mapping of features has the groups {list(GROUPS)}")
    groups = {g: resolve(spec[g], f"{where}.{g}") if spec.get(g) else () for g in GROUPS}
    seen: dict[str, str] = {}
    for g, columns in groups.items():
        for c in columns:
            if c in seen:
                raise ValueError(f"{where}: {c} is in {where}.{seen[c]} and in {where}.{g}; a column describes one "
                                 "jet or the event")
            seen[c] = g
    columns = tuple(seen)
    if not columns:
        raise ValueError(f"{where}: every group is empty")
    return columns, groups


def require(columns, features, source: str) -> None:
    """Fail, naming ``source``, when a configured feature is not among ``columns``."""
    missing = [f for f in features if f not in set(columns)]
    if missing:
        have = [c for c in columns if c not in OWN]
        raise ValueError(f"{source}: no column(s) {missing} for the scan's features (the config's features:); it "
                         f"has {have}")
