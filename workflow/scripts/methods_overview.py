import pandas as pd

from slidescan.io import write_csv
from slidescan.plots import methods_z
from slidescan.report.methods import overview
from slidescan.smk import job_log
from slidescan.stages.scan import read_scan

with job_log(snakemake):
    performance = pd.read_csv(snakemake.input.performance[0]) if snakemake.input.performance else None
    table = overview(read_scan(snakemake.input.scan[0]), snakemake.params.truth_window, performance,
                     pd.read_csv(snakemake.input.calibration))
    write_csv(snakemake.output.table, table)
    methods_z(table, snakemake.output.plot)
