# One rule per per-window model the scan's methods need (slidescan.density.Model, from the registry). A job serves
# the units (window, pseudo-experiment) that `packing.models` groups: one (experiment), all seeds of a window,
# signal model and injection (seeds), all of a window (window) or the whole scan (scan); every unit has its own
# output, figure, log and checkpoint (slidescan.layout). A model of the window alone (Model.window_alone: it reads
# no data) has one unit per window, shared by every pseudo-experiment.
PACK = SETTINGS.packing.models


def model_key(model):
    """The wildcards of a model's jobs: a model of the window alone (``Model.window_alone``) has at most a window."""
    if model.window_alone:
        return () if PACK == "scan" else ("window",)
    return {"experiment": ("window", "signal", "injection", "seed"), "seeds": ("window", "signal", "injection"),
            "window": ("window",), "scan": ()}[PACK]


def model_units(model):
    """The (window, signal prefix, injection, seed) of each unit of one job, as wildcard patterns where the job has
    them; a job of whole windows serves every pseudo-experiment of the scan. A model of the window alone has one unit
    per window (its pseudo-experiment fields are those of the first one; its paths ignore them)."""
    key = model_key(model)
    windows = ["{window}"] if "window" in key else WINDOWS
    if "injection" in key:
        groups = [("{signal}", "{injection}")]
    else:
        groups = list(dict.fromkeys((signal_prefix(e.signal), e.injection) for e in SETTINGS.experiments))
    seeds = ["{seed}"] if "seed" in key else SEEDS
    if model.window_alone:
        groups, seeds = groups[:1], seeds[:1]
    return [(w, p, i, s) for w in windows for p, i in groups for s in seeds]


def _code_params(model):
    from slidescan.registry import code_identity

    code = code_identity(model)
    return {"code": code} if code else {}


def _labelled(model, window, prefix, injection, seed):
    if model.window_alone:
        return {"window": window, "signal": "", "injection": "all", "seed": "all"}
    return {"window": window, "signal": prefix, "injection": str(injection), "seed": str(seed)}


for _name, _configured in MODELS.items():
    _model = _configured.model
    _units = model_units(_model)
    _outputs = [str(LAYOUT.model(_model, w, f"{p}inj{i}_seed{s}")) for w, p, i, s in _units]
    if _model.diagnostics:
        _outputs += [report(str(LAYOUT.model_plot(_model, w, f"{p}inj{i}_seed{s}")), category="Diagnostics",
                            subcategory=f"model {_name}", labels=_labelled(_model, w, p, i, s),
                            caption="../report/model.rst")
                     for w, p, i, s in _units]
    _job = {key: "{" + key + "}" for key in model_key(_model)}

    rule:
        name:
            _name
        input:
            # the data of its units (none for a model of the window alone)
            split=[] if _model.window_alone else sorted({str(LAYOUT.split(w, f"{p}inj{i}_seed{s}"))
                                                         for w, p, i, s in _units}),
            events=LAYOUT.events(),
            # the auxiliary samples the model reads, of its units' windows
            samples=sorted({str(LAYOUT.sample_split(n, w)) for n in _model.samples for w, *_ in _units}),
            # the outputs of the models it reads, of its units
            models=[str(LAYOUT.model(MODELS[n].model, w, f"{p}inj{i}_seed{s}")) for n in _model.models
                    for w, p, i, s in _units],
        output:
            _outputs,
        resources:
            **(SLURM_GPU if _model.gpu else SLURM),
        log:
            str(LAYOUT.model_job_log(_model, **_job)),
        params:
            model=_name,
            description=_model.description,
            caption=_model.caption,
            settings=_configured.config_section(config),
            windows=config["windows"],
            folds=config["folds"],
            packing=config["packing"],
            # a plug-in model's code: editing it reruns the model (registry.code_identity; "" for slidescan's own)
            **_code_params(_model),
        threads: max(_configured.threads, SETTINGS.cluster.gpus) if _model.gpu else _configured.threads
        script:
            "../scripts/model.py"

    rule:
        name:
            f"loss_{_name}"
        localrule: True
        input:
            sorted({str(LAYOUT.model(_model, w, e)) for w in WINDOWS for e in SETTINGS.experiments}),
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
