"""Training: ``rnnspec train | eval | predict | sample`` (see docs/training.md).

* :mod:`.tasks` — the spec's ``train.data`` -> split data, objective, batches;
* :mod:`.losses` — objectives: masked losses and metrics;
* :mod:`.models` — the module trained (the network, or an encoder-decoder);
* :mod:`.optim` — optimizers and learning-rate schedules;
* :mod:`.loop` — the training loop, BPTT, evaluation, exact resume;
* :mod:`.runs` — the run directory: metrics, TensorBoard, MLflow, plot;
* :mod:`.progress` — live or line-per-log progress;
* :mod:`.distributed` — torchrun / DistributedDataParallel;
* :mod:`.config` — ``--train.x=...`` command-line overrides;
* :mod:`.inference` — eval, predict, sample from a run;
* :mod:`.checkpoint` — atomic writes and checked loading.
"""
