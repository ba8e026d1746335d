import pandas as pd

from slidescan.io import write_csv
from slidescan.plots import calibration as plot_calibration
from slidescan.smk import job_log
from slidescan.stages.scan import calibration

with job_log(snakemake):
    table = pd.read_csv(snakemake.input[0])
    ks = calibration(table)
    write_csv(snakemake.output.table, ks)
    plot_calibration(table, ks, snakemake.output.plot)
