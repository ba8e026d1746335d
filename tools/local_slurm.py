#!/usr/bin/env python3
"""A real one-node SLURM cluster on this machine, for testing profiles/slurm (Debian, as root).

    python3 tools/local_slurm.py start    # install slurm-wlm, munge, slurmdbd, MariaDB; start; smoke-test
    python3 tools/local_slurm.py stop
    python3 tools/local_slurm.py status

What a faithful test cluster needs (each learned the hard way):
- accounting (slurmdbd on a private MariaDB): snakemake-executor-plugin-slurm polls ``sacct``, and
  without accounting ``sacct`` fails and Snakemake never sees a job finish;
- the config in /etc/slurm: the job-step plugin drops ``SLURM_CONF`` inside jobs;
- fake GPUs whose ``File=`` entries are character devices (symlinks to /dev/null), so ``--gpus=1``
  is scheduled and sets ``CUDA_VISIBLE_DEVICES``, each split into shards (gres/shard) for jobs that share a GPU;
- a higher-priority partition (``urgent``) whose jobs preempt and requeue those of ``debug``, to test preemption;
- ``EnforcePartLimits=ALL``: a job asking for more than the node is refused at submission instead of
  pending forever; ``MinJobAge=300`` keeps finished jobs visible to ``squeue`` for a while.
Idempotent: a running cluster with this configuration is left alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "slurmdbd", "munge", "mariadb-server"]
ETC = Path("/etc/slurm")
STATE = Path(os.environ.get("SLIDESCAN_SLURM_STATE", "/var/lib/slidescan-slurm"))
RUN = Path("/run/slidescan-slurm")
LOG = Path("/var/log/slidescan-slurm")
DB_PORT = 3309
FAKE_GPUS = 2
SHARDS = 4  # gres/shard per fake GPU: jobs asking --gres=shard:N share a GPU
PARTITION = "debug"
URGENT = "urgent"  # a higher-priority partition whose jobs preempt (requeue) those of PARTITION


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def ok(*cmd: str) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wait(what: str, test, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if test():
            return
        time.sleep(0.2)
    raise SystemExit(f"local_slurm: timed out after {seconds:.0f} s waiting for {what}; logs in {LOG}")


def running(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().split()[0])
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
        return state != "Z"
    except (OSError, ValueError, IndexError):
        return False


def install() -> None:
    missing = [p for p in PACKAGES if "ok installed" not in sh("dpkg-query", "-W", "-f=${Status}", p, check=False).stdout]
    if missing:
        print(f"local_slurm: apt-get install {' '.join(missing)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        sh("apt-get", "update", "-qq", env=env)
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def write(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` if it differs; True when it changed."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


def slurm_conf(host: str, hardware: str) -> str:
    return f"""# written by slidescan tools/local_slurm.py
ClusterName=slidescan-local
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={STATE}/ctld
SlurmdSpoolDir={STATE}/slurmd
SlurmctldPidFile={RUN}/slurmctld.pid
SlurmdPidFile={RUN}/slurmd.pid
SlurmctldLogFile={LOG}/slurmctld.log
SlurmdLogFile={LOG}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
EnforcePartLimits=ALL
ReturnToService=2
MinJobAge=300
KillWait=10
MailProg=/bin/true
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu,gres/shard
JobAcctGatherType=jobacct_gather/linux
GresTypes=gpu,shard
NodeName={host} NodeAddr=127.0.0.1 {hardware} Gres=gpu:{FAKE_GPUS},shard:{FAKE_GPUS * SHARDS} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName={URGENT} Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
"""


def slurmdbd_conf() -> str:
    return f"""AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile={LOG}/slurmdbd.log
PidFile={RUN}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={DB_PORT}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
"""


def stop_daemon(pidfile: Path) -> None:
    if not running(pidfile):
        return
    pid = int(pidfile.read_text().split()[0])
    os.kill(pid, 15)
    end = time.monotonic() + 15
    while running(pidfile) and time.monotonic() < end:
        time.sleep(0.1)
    if running(pidfile):
        os.kill(pid, 9)


def stop_foreign(name: str, pidfile: Path) -> None:
    """Stop a daemon of another setup (other pid file), which would hold our ports."""
    if running(pidfile):
        return
    if subprocess.run(["pkill", "-x", name], capture_output=True).returncode == 0:
        end = time.monotonic() + 15
        while subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0 and time.monotonic() < end:
            time.sleep(0.2)
        subprocess.run(["pkill", "-9", "-x", name], capture_output=True)


def start_munge() -> None:
    key = Path("/etc/munge/munge.key")
    for d in ("/etc/munge", "/run/munge", "/var/log/munge", "/var/lib/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
    if not key.exists() or key.stat().st_size == 0:
        key.write_bytes(os.urandom(1024))
    sh("chown", "-R", "munge:munge", "/etc/munge", "/run/munge", "/var/log/munge", "/var/lib/munge")
    key.chmod(0o400)
    Path("/etc/munge").chmod(0o700)
    Path("/run/munge").chmod(0o755)
    if not ok("sh", "-c", "munge -n | unmunge"):
        sh("runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force")
    wait("munged", lambda: ok("sh", "-c", "munge -n | unmunge"), 10)


def start_accounting() -> None:
    socket_path = RUN / "mysqld.sock"
    datadir = STATE / "mysql"
    mysql = ["mariadb", "--no-defaults", f"--socket={socket_path}", "-uroot"]
    if not running(RUN / "mysqld.pid"):
        if not (datadir / "mysql").exists():
            sh("mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={datadir}",
               "--auth-root-authentication-method=normal", "--skip-test-db")
        subprocess.Popen(["mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}", f"--socket={socket_path}",
                          f"--port={DB_PORT}", "--bind-address=127.0.0.1", f"--pid-file={RUN}/mysqld.pid",
                          f"--log-error={LOG}/mysqld.err", "--innodb-buffer-pool-size=64M"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait("MariaDB", lambda: ok(*mysql, "-e", "select 1"), 60)
    sh(*mysql, "-e", "CREATE DATABASE IF NOT EXISTS slurm_acct_db; "
       "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm'; "
       "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
    if write(ETC / "slurmdbd.conf", slurmdbd_conf(), 0o600):
        stop_daemon(RUN / "slurmdbd.pid")
    if not running(RUN / "slurmdbd.pid"):
        sh("slurmdbd")
    wait("slurmdbd", lambda: ok("sacctmgr", "-n", "list", "cluster"), 60)
    clusters = sh("sacctmgr", "-n", "-P", "list", "cluster", "format=cluster").stdout.split()
    if "slidescan-local" not in clusters:
        sh("sacctmgr", "-i", "add", "cluster", "slidescan-local")


def start() -> None:
    if os.geteuid() != 0:
        raise SystemExit("local_slurm: run as root (it installs packages and starts daemons)")
    if not shutil.which("apt-get"):
        raise SystemExit("local_slurm: needs Debian's apt-get")
    install()
    for d in (ETC, RUN, LOG, STATE / "ctld", STATE / "slurmd", STATE / "gpu"):
        d.mkdir(parents=True, exist_ok=True)
    for name in ("slurmd", "slurmctld", "slurmdbd"):
        stop_foreign(name, RUN / f"{name}.pid")
    start_munge()
    host = socket.gethostname().split(".")[0]
    hardware = sh("slurmd", "-C").stdout.splitlines()[0].split(" ", 1)[1]  # CPUs=... RealMemory=...
    for i in range(FAKE_GPUS):
        link = STATE / "gpu" / f"nvidia{i}"
        if not link.is_symlink():
            link.symlink_to("/dev/null")
    changed = write(ETC / "slurm.conf", slurm_conf(host, hardware))
    gpus = f"File={STATE}/gpu/nvidia[0-{FAKE_GPUS - 1}]"
    changed |= write(ETC / "gres.conf", f"AutoDetect=off\nNodeName={host} Name=gpu {gpus}\n"
                                       f"NodeName={host} Name=shard Count={FAKE_GPUS * SHARDS} {gpus}\n")
    if changed:
        stop_daemon(RUN / "slurmd.pid")
        stop_daemon(RUN / "slurmctld.pid")
    start_accounting()
    if not running(RUN / "slurmctld.pid"):
        sh("slurmctld")
    wait("slurmctld", lambda: ok("scontrol", "ping"), 30)
    if not running(RUN / "slurmd.pid"):
        sh("slurmd")
    time.sleep(0.5)
    sh("scontrol", "update", f"nodename={host}", "state=resume", check=False)  # clear a stale drain
    wait("the node", lambda: sh("sinfo", "-h", "-n", host, "-o", "%T", check=False).stdout.strip()
         in ("idle", "mixed", "allocated"), 60)
    smoke = sh("srun", "-t", "1", "--gpus=1", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES", check=False, timeout=60)
    if smoke.returncode != 0:
        raise SystemExit(f"local_slurm: srun smoke test failed: {smoke.stderr.strip()}")
    print(f"local_slurm: ready: {sh('sinfo', '-h', '-o', '%P %T %c CPUs %m MB %G').stdout.strip()}", flush=True)


def stop() -> None:
    for name in ("slurmd", "slurmctld", "slurmdbd", "mysqld"):
        stop_daemon(RUN / f"{name}.pid")


def status() -> int:
    states = {name: running(RUN / f"{name}.pid") for name in ("mysqld", "slurmdbd", "slurmctld", "slurmd")}
    for name, up in states.items():
        print(f"{name}: {'running' if up else 'stopped'}")
    return 0 if all(states.values()) else 1


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        start()
    elif command == "stop":
        stop()
    elif command == "status":
        sys.exit(status())
    else:
        raise SystemExit("usage: local_slurm.py [start|stop|status]")
