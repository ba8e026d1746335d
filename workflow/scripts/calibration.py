from slidescan.io import write_csv
from slidescan.plots import calibration as plot_calibration
from slidescan.smk import job_log
from slidescan.stages.scan import calibration, read_scan

with job_log(snakemake):
    table = read_scan(snakemake.input[0])
    ks = calibration(table)
    write_csv(snakemake.output.table, ks)
    plot_calibration(table, ks, snakemake.output.plot)
