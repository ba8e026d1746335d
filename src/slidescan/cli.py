"""``slidescan``: a thin command line over Snakemake for the common tasks.

``slidescan run`` runs the scan with the local profile and then writes the HTML report; any
argument after ``--`` goes to snakemake unchanged (e.g. ``-- -n`` for a dry run). ``slidescan launch``
submits that same run, with the SLURM profile, as a long CPU job on the cluster.
"""

from __future__ import annotations

import argparse
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


def cmd_run(ns: argparse.Namespace, extra: list[str]) -> int:
    _settings(ns)
    base = ["--profile", ns.profile, "--configfile", str(ns.configfile)]
    rc = _snakemake([*base, *extra], ns.workdir)
    if rc != 0 or "-n" in extra or "--dry-run" in extra or ns.no_report:
        return rc
    return cmd_report(ns, [])


def cmd_report(ns: argparse.Namespace, extra: list[str]) -> int:
    from .report.summary import write_summary

    report = _settings(ns).layout().report()
    print(f"summary written to {write_summary(ns.workdir, ns.configfile)}")
    rc = _snakemake(["--configfile", str(ns.configfile), "--cores", "1", "--report", str(report), *extra], ns.workdir)
    if rc == 0:
        print(f"report written to {ns.workdir / report}")
    return rc


def cmd_launch(ns: argparse.Namespace, extra: list[str]) -> int:
    from .cluster.launch import submit_head

    settings = _settings(ns)
    scan = settings.scan
    run_argv = ["--configfile", str(ns.configfile), "--profile", ns.profile]
    if ns.no_report:
        run_argv.append("--no-report")
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
    return 1 if counts["failed"] else 0


def cmd_schema(ns: argparse.Namespace, extra: list[str]) -> int:
    """The whole config schema (every key, its default and meaning), with the plugins of the config."""
    from .config import import_plugins, read_yaml, schema

    config = read_yaml(ns.workdir / ns.configfile) if (ns.workdir / ns.configfile).exists() else {}
    import_plugins(config.get("plugins") or [], ns.workdir)
    print(yaml.safe_dump(schema(), sort_keys=False, width=110))
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
    report = sub.add_parser("report", help="write results/<scan>/report.html from a finished scan")
    _common(report)
    launch = sub.add_parser("launch", help="submit the whole scan (the Snakemake head process with "
                                           "profiles/slurm) as a long CPU job on SLURM; prints its job id and log")
    _common(launch, profile="profiles/slurm")
    launch.add_argument("--no-report", action="store_true", help="skip the HTML report")
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
    schema = sub.add_parser("schema", help="print the config schema: every key with its default and meaning, "
                                           "including the sections of methods, models and backends (and plugins)")
    _common(schema)
    ns = parser.parse_args(argv)
    commands = {"run": cmd_run, "launch": cmd_launch, "report": cmd_report, "status": cmd_status, "schema": cmd_schema}
    return commands[ns.command](ns, extra)


if __name__ == "__main__":
    sys.exit(main())
