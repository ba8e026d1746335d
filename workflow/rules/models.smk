# One rule per per-window model the scan's methods need (slidescan.density.Model, from the registry):
# a job per window and pseudo-experiment, its output, diagnostics figure, log and checkpoint from the layout.
for _name, _configured in MODELS.items():
    _model = _configured.model
    _outputs = {"data": str(LAYOUT.model(_model, "{window}", EXPERIMENT))}
    if _model.diagnostics:
        _outputs["plot"] = report(
            str(LAYOUT.model_plot(_model, "{window}", EXPERIMENT)),
            category="Diagnostics",
            subcategory=f"model {_name}",
            labels={"window": "{window}", "injection": "{injection}", "seed": "{seed}"},
            caption="../report/model.rst",
        )

    rule:
        name:
            _name
        input:
            split=LAYOUT.split("{window}", EXPERIMENT),
            events=LAYOUT.events(),
        output:
            **_outputs,
        resources:
            **(SLURM_GPU if _model.gpu else SLURM),
        log:
            str(LAYOUT.model_log(_model, "{window}", EXPERIMENT)),
        params:
            model=_name,
            description=_model.description,
            caption=_model.caption,
            settings=_configured.config_section(config),
            windows=config["windows"],
            folds=config["folds"],
        threads: _configured.threads
        script:
            "../scripts/model.py"

    rule:
        name:
            f"loss_{_name}"
        localrule: True
        input:
            [LAYOUT.model(_model, w, e) for w in WINDOWS for e in SETTINGS.experiments],
        output:
            report(
                str(LAYOUT.model_loss_plot(_model)),
                category="Diagnostics",
                subcategory="loss curves",
                labels={"method": f"model {_name}"},
                caption="../report/loss_models.rst",
            ),
        log:
            str(LAYOUT.log("loss_curves", _name)),
        params:
            title=f"{_model.description}, all windows",
            ylabel=_model.loss_label,
        script:
            "../scripts/loss_curves.py"
