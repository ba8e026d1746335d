from slidescan.io import read_attrs, read_table
from slidescan.plots import loss_curves
from slidescan.smk import job_log

with job_log(snakemake):
    histories = {}
    for path in snakemake.input:
        a = read_attrs(path)
        fold = f" fold {a['fold']}" if "fold" in a else ""
        histories[f"{a['window']} inj {a['injection']} seed {a['seed']}{fold}"] = read_table(path, "history")
    flows = snakemake.rule == "flow_loss_curves"
    title = "CATHODE flows, all windows" if flows else f"{snakemake.wildcards.method}, {snakemake.params.window}"
    loss_curves(histories, title, snakemake.output[0],
                ylabel="negative log-likelihood per event" if flows else "loss (weighted binary cross-entropy)")
