rule train:
    input:
        rules.split.output,
    output:
        f"{RESULTS}/train/{{window}}/{{method}}/{EXPERIMENT}/fold{{fold}}.h5",
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
    log:
        f"{RESULTS}/logs/merge_folds/{{window}}/{{method}}/{EXPERIMENT}.log",
    script:
        "../scripts/merge_folds.py"
