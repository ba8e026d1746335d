"""``slidescan``: a thin command line over Snakemake for the common tasks.

``slidescan run`` runs the scan with the local profile and then writes the HTML report; any
argument after ``--`` goes to snakemake unchanged (e.g. ``-- -n`` for a dry run). ``slidescan launch``
submits that same run, with the SLURM profile, as a long CPU job on the cluster.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml


def _settings(ns: argparse.Namespace):
    """The scan's settings, or exit with the config error (file and key first)."""
    from .config import ConfigError, load_settings

    try:
        return load_settings(ns.workdir, ns.configfile)
    except ConfigError as err:
        raise SystemExit(f"slidescan: {err}")


def _preflight(ns: argparse.Namespace, settings) -> None:
    """What can be told about the inputs before any job runs: an LHCO file without labels, for a scan that needs
    them, stops here in one line instead of in the data job."""
    from .data.sources import has_labels

    if settings.data.source == "lhco_h5" and has_labels(settings.data, ns.workdir) is False \
            and settings.truth_needs():
        raise SystemExit(f"slidescan: {ns.configfile}: data.lhco_h5.path: {settings.data.lhco_h5.path} has no column "
                         f"'label' (data without truth labels), so {settings.refusal_without_labels()}")


def _snakemake(args: list[str], workdir: Path) -> int:
    command = [sys.executable, "-m", "snakemake", *args]
    print("+ " + " ".join(command), flush=True)
    process = subprocess.Popen(command, cwd=workdir)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            # Snakemake got the same SIGINT (Ctrl-C, or `scancel --signal=INT` of a launched head job) and is
            # cancelling its jobs: wait for it instead of killing it halfway (subprocess.call would)
            continue


def _common(parser: argparse.ArgumentParser, profile: str = "profiles/local") -> None:
    parser.add_argument("--configfile", type=Path, default=Path("config/config.yaml"),
                        help="scan configuration (default: config/config.yaml, the embedded default)")
    parser.add_argument("--profile", default=profile, help=f"snakemake profile (default: {profile})")
    parser.add_argument("--workdir", type=Path, default=Path.cwd(),
                        help="the slidescan checkout holding the Snakefile (default: current directory)")


DRY = ("-n", "--dry-run", "--dryrun", "--unlock", "--list", "--summary", "--detailed-summary")


def _check_settings(ns: argparse.Namespace, settings) -> list[str]:
    """Stop before a run would overwrite a scan made with other settings (``slidescan.record``); the changes that
    ``--force`` accepts."""
    from . import record

    path = settings.layout(ns.workdir).settings_record()
    found = record.check(path, settings.config)
    if found and not ns.force:
        raise SystemExit(record.refusal(settings.scan, found, path.parent))
    return found


def _record_settings(ns: argparse.Namespace, settings, found: list[str]) -> None:
    """Record the settings the results are about to be made with: only once this run holds the scan."""
    from . import record

    if found:
        print(f"--force: replacing the results of scan {settings.scan!r} made with other settings "
              f"({len(found)} changed: {'; '.join(found[:3])}{' ...' if len(found) > 3 else ''})")
    record.write(settings.layout(ns.workdir).settings_record(), settings.config)


def _unlock_if_stale(ns: argparse.Namespace, settings) -> None:
    """Clear the lock a dead run left (never while a head may run: then stop with who holds it)."""
    from .cluster.lock import lock_state

    lock = lock_state(ns.workdir, settings.layout(ns.workdir).launch())
    if lock.state == "held":
        raise SystemExit(f"slidescan: {lock.text}. Wait for it, or stop it (Ctrl-C in its terminal, "
                         "`scancel --signal=INT <job>` for a launched head), then run again.")
    if lock.state == "stale":
        print(f"slidescan: {lock.text.split(';')[0]}; clearing it", flush=True)
        rc = _snakemake(["--configfile", str(ns.configfile), "--unlock"], ns.workdir)
        if rc != 0:
            raise SystemExit(f"slidescan: snakemake --unlock failed (rc {rc})")


def cmd_run(ns: argparse.Namespace, extra: list[str]) -> int:
    """The scan, then its report. Before anything of the scan is written, the run holds the scan (its head lock),
    the directory is free (Snakemake's lock: a stale one cleared) and the settings agree with the recorded ones: a
    refused run changes nothing, neither the settings record nor another head's record."""
    from .cluster.lock import HeadRunning, clear_head, head_lock, record_head

    settings = _settings(ns)
    _preflight(ns, settings)
    base = ["--profile", ns.profile, "--configfile", str(ns.configfile)]
    command = [*extra, *base]  # targets in extra first: --configfile takes several values and would swallow them
    if any(flag in extra for flag in DRY):
        return _snakemake(command, ns.workdir)
    found = _check_settings(ns, settings)
    launch = settings.layout(ns.workdir).launch()
    try:
        with head_lock(launch):
            _unlock_if_stale(ns, settings)
            _record_settings(ns, settings, found)
            record_head(launch)
            try:
                rc = _snakemake(command, ns.workdir)
            finally:
                clear_head(launch)
            if rc != 0 or ns.no_report:
                return rc
            return cmd_report(ns, [])
    except HeadRunning as err:
        raise SystemExit(f"slidescan: {err}. Wait for it, or stop it (Ctrl-C in its terminal, "
                         "`scancel --signal=INT <job>` for a launched head), then run again.")


def cmd_unlock(ns: argparse.Namespace, extra: list[str]) -> int:
    """Clear a stale lock; with --force also one this host cannot tell is stale (a head on another host)."""
    from .cluster.lock import lock_state

    settings = _settings(ns)
    lock = lock_state(ns.workdir, settings.layout(ns.workdir).launch())
    if lock.state == "none":
        print("slidescan: the directory is not locked")
        return 0
    if lock.state == "held" and not ns.force:
        print(f"slidescan: {lock.text}; not unlocking (--force unlocks anyway)", file=sys.stderr)
        return 1
    return _snakemake(["--configfile", str(ns.configfile), "--unlock"], ns.workdir)


def report_targets(settings, workdir: Path) -> list[str]:
    """The finished outputs a partial report can show, relative to the checkout as Snakemake's targets are.

    Each is shown with every job upstream of it, so each must have finished with all it depends on: a
    model's output, a scan's bump-hunt table (its folds all finished), and what needs the whole scan
    (calibration, sensitivity, scan plots, jobs table) only when the scan table is there.
    """
    from .registry import MODELS

    layout = settings.layout()
    targets = [layout.window_map()]
    targets += [layout.model(MODELS[name], w.name, e) for name in settings.models() for w in settings.windows
                for e in settings.experiments]
    targets += [layout.bumphunt(method, e) for method in settings.methods for e in settings.experiments]
    if (workdir / layout.pvalue_scan()).exists():
        targets += [layout.pvalue_scan(), layout.calibration(), layout.jobs()]
        targets += [layout.sensitivity_plot(s.name) for s in settings.signals]
        groups = dict.fromkeys((e.signal, e.injection) for e in settings.experiments)
        targets += [layout.scan_plot(m, i, s) for m in settings.methods for s, i in groups]
    return [str(p) for p in targets if (workdir / p).exists()]


def cmd_report(ns: argparse.Namespace, extra: list[str]) -> int:
    """The HTML report of whatever has finished; a partial one (the summary says what is missing) after failures."""
    import os

    from .report.summary import write_summary

    settings = _settings(ns)
    layout = settings.layout(ns.workdir)
    targets = report_targets(settings, ns.workdir)
    if not targets:
        print(f"slidescan report: nothing to report yet for scan {settings.scan!r}: no job has finished in "
              f"{layout.root} (run `slidescan run --configfile {ns.configfile}` first)", file=sys.stderr)
        return 1
    summary = layout.summary()
    before = summary.read_bytes() if summary.exists() else None
    print(f"summary written to {write_summary(ns.workdir, ns.configfile)}")
    relative = settings.layout().report()
    partial = relative.with_name(f".{relative.name}.partial.html")  # renamed onto the report once complete
    complete = layout.pvalue_scan().exists() and layout.jobs().exists()
    args = ["--configfile", str(ns.configfile), "--cores", "1", "--report", str(partial), *extra]
    rc = _snakemake(args + ([] if complete else targets), ns.workdir)
    if rc != 0 and complete:  # a figure of the full report is missing (a failed plot): report what exists
        rc = _snakemake(args + targets, ns.workdir)
    if rc == 0:
        os.replace(ns.workdir / partial, ns.workdir / relative)
        print(f"report written to {ns.workdir / relative}" + ("" if complete else
              " (partial: the summary lists what has not finished; `slidescan status` has the details)"))
    else:  # leave nothing half-written: the summary as it was, no partial report
        (ns.workdir / partial).unlink(missing_ok=True)
        if before is None:
            summary.unlink(missing_ok=True)
        else:
            summary.write_bytes(before)
    return rc


def cmd_launch(ns: argparse.Namespace, extra: list[str]) -> int:
    from .cluster.launch import submit_head

    from . import record

    settings = _settings(ns)
    _preflight(ns, settings)
    scan = settings.scan
    found = record.check(settings.layout(ns.workdir).settings_record(), settings.config)
    if found and not ns.force:  # the head's `slidescan run` would refuse: say it now, not in its log
        raise SystemExit(record.refusal(scan, found, settings.layout(ns.workdir).root))
    run_argv = ["--configfile", str(ns.configfile), "--profile", ns.profile]
    if ns.no_report:
        run_argv.append("--no-report")
    if ns.force:
        run_argv.append("--force")
    if extra:
        run_argv += ["--", *extra]
    try:
        head = submit_head(ns.workdir.resolve(), settings, run_argv, hours=ns.hours, cpus=ns.cpus,
                           mem_gb=ns.mem_gb, partition=ns.partition, account=ns.account, qos=ns.qos)
    except ImportError:
        raise SystemExit("slidescan launch needs submitit and the SLURM plugin: pip install -e '.[slurm]'")
    except RuntimeError as err:  # submitit's FailedJobError / FailedSubmissionError carry sbatch's message
        raise SystemExit(f"slidescan launch: sbatch refused the head job: {err}")
    print(f"submitted the head job of scan {scan}: SLURM job {head.job_id}")
    print(f"  its log:        {head.stderr}  (Snakemake's progress; {head.stdout.name} beside it)")
    print(f"  follow it:      tail -f {head.stderr}")
    print(f"  progress:       slidescan status --configfile {ns.configfile}")
    print(f"  stop the scan:  scancel --signal=INT {head.job_id}   (Snakemake then cancels its jobs)")
    return 0


def cmd_status(ns: argparse.Namespace, extra: list[str]) -> int:
    from .cluster.launch import head_status
    from .report.status import report

    settings = _settings(ns)
    text, counts = report(ns.workdir, ns.configfile, ns.profile)
    head = head_status(settings.layout(ns.workdir))
    print(text if head is None else f"{head}\n{text}")
    return 1 if counts["failed"] or counts["stale_lock"] or counts["lost"] else 0


def cmd_schema(ns: argparse.Namespace, extra: list[str]) -> int:
    """The whole config schema (every key, its default and meaning), with the plugins of the config."""
    from .config import import_plugins, read_yaml, schema

    config = read_yaml(ns.workdir / ns.configfile) if (ns.workdir / ns.configfile).exists() else {}
    import_plugins(config.get("plugins") or [], ns.workdir)
    print(yaml.safe_dump(schema(), sort_keys=False, width=110))
    return 0


def cmd_constituents(ns: argparse.Namespace, extra: list[str]) -> int:
    """An LHCO-layout constituent file -> the features table that ``data.source: table`` reads (made once)."""
    from .data.constituents import convert

    try:
        out = convert(ns.input, ns.output, chunk_size=ns.chunk_size, workers=ns.workers, stop=ns.events,
                      efp_degree=ns.efp_degree)
    except (FileNotFoundError, ValueError, ModuleNotFoundError) as err:
        print(f"slidescan: {err}", file=sys.stderr)
        return 1
    print(f"features of {ns.input} in {out}: use it with data: {{source: table, table: {{path: {out}, label: label}}}}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="slidescan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the scan locally, then write results/<scan>/report.html")
    _common(run)
    run.add_argument("--no-report", action="store_true", help="skip the HTML report")
    run.add_argument("--force", action="store_true", help="replace the results of a scan of the same name made "
                                                          "with other settings (default: stop and list them)")
    report = sub.add_parser("report", help="write results/<scan>/report.html from a finished scan")
    _common(report)
    launch = sub.add_parser("launch", help="submit the whole scan (the Snakemake head process with "
                                           "profiles/slurm) as a long CPU job on SLURM; prints its job id and log")
    _common(launch, profile="profiles/slurm")
    launch.add_argument("--no-report", action="store_true", help="skip the HTML report")
    launch.add_argument("--force", action="store_true", help="replace the results of a scan of the same name made "
                                                             "with other settings")
    launch.add_argument("--hours", type=float, default=72.0, help="time limit of the head job (default: 72)")
    launch.add_argument("--cpus", type=int, default=2, help="cores of the head job, which runs the cheap "
                                                             "aggregation and plotting rules (default: 2)")
    launch.add_argument("--mem-gb", type=int, default=8, help="memory of the head job in GB (default: 8)")
    launch.add_argument("--partition", help="partition of the head job (default: config cluster.partition "
                                             "or $SLIDESCAN_SLURM_PARTITION, else the cluster default)")
    launch.add_argument("--account", help="account (default: cluster.account or $SLIDESCAN_SLURM_ACCOUNT)")
    launch.add_argument("--qos", help="QoS (default: cluster.qos or $SLIDESCAN_SLURM_QOS)")
    status = sub.add_parser("status", help="list failed, interrupted and missing training folds, with logs and "
                                           "the command that reruns exactly them (exit 1 if any failed)")
    _common(status)
    unlock = sub.add_parser("unlock", help="clear the Snakemake lock a killed run left (refused while a head runs)")
    _common(unlock)
    unlock.add_argument("--force", action="store_true", help="unlock even when a head on another host may hold it")
    schema = sub.add_parser("schema", help="print the config schema: every key with its default and meaning, "
                                           "including the sections of methods, models and backends (and plugins)")
    _common(schema)
    constituents = sub.add_parser("constituents", help="cluster the jets of an LHCO-layout constituent file and write "
                                                       "their masses and N-subjettiness as a features table")
    constituents.add_argument("input", help="e.g. events_anomalydetection_v2.h5 (pT, eta, phi per particle, label)")
    constituents.add_argument("output", help="the features table (HDF5); kept when made from the same input")
    constituents.add_argument("--chunk-size", type=int, default=2000,
                              help="events per chunk; bounds the memory (about 0.65 GB per worker at 2000)")
    constituents.add_argument("--workers", type=int, help="processes (default: every core)")
    constituents.add_argument("--events", type=int, help="only the first N events")
    constituents.add_argument("--efp-degree", type=int, default=0, metavar="D",
                              help="add every energy-flow polynomial of degree d <= D of both jets, efp{d}_{k}_j{i} "
                                   "(energyflow, installed apart: docs/features.md; default 0: none)")
    ns = parser.parse_args(argv)
    commands = {"run": cmd_run, "launch": cmd_launch, "report": cmd_report, "status": cmd_status, "schema": cmd_schema,
                "unlock": cmd_unlock, "constituents": cmd_constituents}
    try:
        rc = commands[ns.command](ns, extra)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:  # `slidescan status | head`: the reader has gone; end quietly, as a shell tool would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
