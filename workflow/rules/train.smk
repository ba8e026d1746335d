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
    """Every seed's events of the window, plus their flow samples for CATHODE methods."""
    experiments = [dict(wildcards, seed=seed) for seed in SEEDS]
    inputs = {"split": [rules.split.output[0].format(**e) for e in experiments]}
    if needs_flow(wildcards.method):
        inputs["flow"] = [rules.flow.output.samples.format(**e) for e in experiments]
    return inputs


def seed_dirs(kind):
    """Per seed, the directory of its fold results or fold logs (outside the declared outputs)."""
    return lambda wc: [f"{RESULTS}/{kind}/{wc.window}/{wc.method}/inj{wc.injection}_seed{seed}" for seed in SEEDS]


rule train:
    """All k folds of all seeds of one window, method and injection in one job (pipeline.train_experiments)."""
    input:
        unpack(train_inputs),
    output:
        expand(SCORES, seed=SEEDS, allow_missing=True),
    resources:
        **SLURM_GPU,
    log:
        f"{RESULTS}/logs/train/{{window}}/{{method}}/inj{{injection}}.log",
    params:
        # each fold's result, log and checkpoint live outside the declared output: a failed or killed
        # job keeps its finished folds, and the rerun trains only the others
        folds=seed_dirs("train"),
        logs=seed_dirs("logs/train"),
        checkpoints=f"{RESULTS}/checkpoints/{{window}}/{{method}}/inj{{injection}}",
        data=config["data"],
        folds_config=config["folds"],
        classifier=config["classifier"],
    threads: config["classifier"]["nn"]["threads"]
    script:
        "../scripts/train.py"
