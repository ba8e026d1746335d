import pandas as pd

from slidescan.plots import sensitivity
from slidescan.smk import job_log
from slidescan.stages.scan import signal_window_rows

with job_log(snakemake):
    table = pd.read_csv(snakemake.input[0])
    sensitivity(signal_window_rows(table, snakemake.params.truth_mass), snakemake.output[0])
