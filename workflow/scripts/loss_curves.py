from slidescan.io import read_attrs, read_table
from slidescan.plots import loss_curves
from slidescan.smk import job_log

with job_log(snakemake):
    histories = {}
    for path in snakemake.input:
        a = read_attrs(path)
        history = read_table(path, "history")
        label = f"{a['window']} inj {a['injection']} seed {a['seed']}"
        if "fold" in history:  # classifier scores: one curve per fold
            histories.update({f"{label} fold {fold}": h for fold, h in history.groupby("fold")})
        else:
            histories[label] = history
    flows = snakemake.rule == "flow_loss_curves"
    title = "CATHODE flows, all windows" if flows else f"{snakemake.wildcards.method}, {snakemake.params.window}"
    loss_curves(histories, title, snakemake.output[0],
                ylabel="negative log-likelihood per event" if flows else "loss (weighted binary cross-entropy)")
