from slidescan.layout import signal_name
from slidescan.smk import job_log, settings
from slidescan.stages.train import train

with job_log(snakemake) as log:
    scan = settings(snakemake)
    w = snakemake.wildcards
    train(scan, scan.layout(), w.window, w.method, int(w.injection), log=log, signal=signal_name(w.signal))
