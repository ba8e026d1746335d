from slidescan.plots import sensitivity
from slidescan.smk import job_log, settings
from slidescan.stages.scan import read_scan, signal_window_rows

with job_log(snakemake):
    scan = settings(snakemake)
    table = read_scan(snakemake.input[0])
    for model, out in zip(scan.signals, snakemake.output):  # the rule's order of figures
        rows = table[(table["signal"] == model.name) | (table["injection"] == 0)]  # its injections, and none
        sensitivity(signal_window_rows(rows, model.mass) if len(rows) else rows, out,
                    title=f"signal {model.name} ({model.mass:g} TeV)" if model.name else "")
