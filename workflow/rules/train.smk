rule flow:
    input:
        rules.split.output,
    output:
        samples=f"{RESULTS}/flows/{{window}}/{EXPERIMENT}.h5",
        closure=report(
            f"{RESULTS}/plots/flows/{{window}}/{EXPERIMENT}.png",
            category="Diagnostics",
            subcategory="flow closure (CATHODE)",
            labels={"window": "{window}", "injection": "{injection}", "seed": "{seed}"},
            caption="../report/flow_closure.rst",
        ),
    resources:
        **SLURM_GPU,
    log:
        f"{RESULTS}/logs/flow/{{window}}/{EXPERIMENT}.log",
    params:
        checkpoint=f"{RESULTS}/checkpoints/{{window}}/flow/{EXPERIMENT}.ckpt",
        flow=config["flow"],
        windows=config["windows"],
        folds=config["folds"],
    threads: config["flow"]["threads"]
    script:
        "../scripts/flow.py"


def train_inputs(wildcards):
    """The window's events, plus the flow samples for CATHODE methods."""
    inputs = {"split": rules.split.output[0].format(**wildcards)}
    if needs_flow(wildcards.method):
        inputs["flow"] = rules.flow.output.samples.format(**wildcards)
    return inputs


rule train:
    """All k folds of one window, method and pseudo-experiment in one job (pipeline.train_folds)."""
    input:
        unpack(train_inputs),
    output:
        f"{RESULTS}/scores/{{window}}/{{method}}/{EXPERIMENT}.h5",
    resources:
        **SLURM_GPU,
    log:
        f"{RESULTS}/logs/train/{{window}}/{{method}}/{EXPERIMENT}.log",
    params:
        # each fold's result, log and checkpoint live outside the declared output: a failed or killed
        # job keeps its finished folds, and the rerun trains only the others
        folds=f"{RESULTS}/train/{{window}}/{{method}}/{EXPERIMENT}",
        logs=f"{RESULTS}/logs/train/{{window}}/{{method}}/{EXPERIMENT}",
        checkpoints=f"{RESULTS}/checkpoints/{{window}}/{{method}}/{EXPERIMENT}",
        data=config["data"],
        folds_config=config["folds"],
        classifier=config["classifier"],
    threads: config["classifier"]["nn"]["threads"]
    script:
        "../scripts/train.py"
