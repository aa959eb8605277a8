"""Loggers and callbacks that let a training framework log to labbook by itself.

Each module imports its framework only when one of its classes is made, so
``import labbook`` never pays for torch or xgboost. Every integration:

- logs on rank zero only (the first of ``RANK``, ``LOCAL_RANK``, ``SLURM_PROCID`` that is
  set, and the framework's own rank where it has one), so a distributed job makes one run;
- never stops training when the notebook cannot be written: the error becomes a warning
  on the ``labbook`` logger (``labbook.integrations.<name>: could not …``) and training
  goes on, the run's journal keeping what was logged before.

- ``labbook.integrations.lightning``: ``Trainer(logger=LabbookLogger())`` (``labbook[lightning]``)
- ``labbook.integrations.transformers``: ``Trainer(callbacks=[LabbookCallback()])``
  (``labbook[transformers]``)
- ``labbook.integrations.keras``: ``model.fit(callbacks=[LabbookCallback()])`` (``labbook[keras]``)
- ``labbook.integrations.xgboost``: ``xgboost.train(callbacks=[LabbookCallback()])`` (``labbook[xgboost]``)
- ``labbook.integrations.lightgbm``: ``lightgbm.train(callbacks=[log_evaluation()])`` (``labbook[lightgbm]``)
- ``labbook.integrations.optuna``: ``study.optimize(callbacks=[LabbookCallback()])`` (``labbook[optuna]``)

See docs/integrations.md.
"""
