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
    input:
        unpack(train_inputs),
    output:
        f"{RESULTS}/train/{{window}}/{{method}}/{EXPERIMENT}/fold{{fold}}.h5",
    resources:
        **SLURM_GPU,
    log:
        f"{RESULTS}/logs/train/{{window}}/{{method}}/{EXPERIMENT}/fold{{fold}}.log",
    params:
        # checkpoints live outside the declared outputs, so a failed or killed job keeps them
        checkpoint=f"{RESULTS}/checkpoints/{{window}}/{{method}}/{EXPERIMENT}/fold{{fold}}.ckpt",
        data=config["data"],
        classifier=config["classifier"],
    threads: config["classifier"]["nn"]["threads"]
    script:
        "../scripts/train.py"


rule merge_folds:
    input:
        lambda wc: expand(rules.train.output[0], fold=FOLDS, **wc),
    output:
        f"{RESULTS}/scores/{{window}}/{{method}}/{EXPERIMENT}.h5",
    resources:
        **SLURM,
    log:
        f"{RESULTS}/logs/merge_folds/{{window}}/{{method}}/{EXPERIMENT}.log",
    script:
        "../scripts/merge_folds.py"
