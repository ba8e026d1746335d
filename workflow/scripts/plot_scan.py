from slidescan.layout import signal_name
from slidescan.plots import pvalue_scan
from slidescan.smk import job_log, settings
from slidescan.stages.scan import read_scan

with job_log(snakemake):
    w = snakemake.wildcards
    signal, injection = signal_name(w.signal), int(w.injection)
    truth = settings(snakemake).signal(signal).mass if injection else None  # background only: no signal to mark
    pvalue_scan(read_scan(snakemake.input[0]), w.method, injection, snakemake.output[0], truth_mass=truth,
                signal=signal)
