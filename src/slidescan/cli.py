"""``slidescan``: a thin command line over Snakemake for the common tasks.

``slidescan run`` runs the scan with the local profile and then writes the HTML report; any
argument after ``--`` goes to snakemake unchanged (e.g. ``-- -n`` for a dry run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml


def _scan_name(configfile: Path) -> str:
    if not configfile.exists():
        raise SystemExit(f"slidescan: config file {configfile} does not exist")
    config = yaml.safe_load(configfile.read_text()) or {}
    if "scan" not in config:
        raise SystemExit(f"slidescan: {configfile} has no 'scan' key (the name of results/<scan>/)")
    return str(config["scan"])


def _snakemake(args: list[str], workdir: Path) -> int:
    command = [sys.executable, "-m", "snakemake", *args]
    print("+ " + " ".join(command), flush=True)
    return subprocess.call(command, cwd=workdir)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", type=Path, default=Path("config/config.yaml"),
                        help="scan configuration (default: config/config.yaml, the embedded default)")
    parser.add_argument("--profile", default="profiles/local", help="snakemake profile (default: profiles/local)")
    parser.add_argument("--workdir", type=Path, default=Path.cwd(),
                        help="the slidescan checkout holding the Snakefile (default: current directory)")


def cmd_run(ns: argparse.Namespace, extra: list[str]) -> int:
    _scan_name(ns.workdir / ns.configfile)
    base = ["--profile", ns.profile, "--configfile", str(ns.configfile)]
    rc = _snakemake([*base, *extra], ns.workdir)
    if rc != 0 or "-n" in extra or "--dry-run" in extra or ns.no_report:
        return rc
    return cmd_report(ns, [])


def cmd_report(ns: argparse.Namespace, extra: list[str]) -> int:
    from .summary import write_summary

    scan = _scan_name(ns.workdir / ns.configfile)
    report = f"results/{scan}/report.html"
    print(f"summary written to {write_summary(ns.workdir, ns.configfile)}")
    rc = _snakemake(["--configfile", str(ns.configfile), "--cores", "1", "--report", report, *extra], ns.workdir)
    if rc == 0:
        print(f"report written to {ns.workdir / report}")
    return rc


def cmd_status(ns: argparse.Namespace, extra: list[str]) -> int:
    from .status import report

    text, counts = report(ns.workdir, ns.configfile, ns.profile)
    print(text)
    return 1 if counts["failed"] else 0


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
    status = sub.add_parser("status", help="list failed, interrupted and missing training folds, with logs and "
                                           "the command that reruns exactly them (exit 1 if any failed)")
    _common(status)
    ns = parser.parse_args(argv)
    return {"run": cmd_run, "report": cmd_report, "status": cmd_status}[ns.command](ns, extra)


if __name__ == "__main__":
    sys.exit(main())
