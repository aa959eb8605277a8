"""Loggers and callbacks that let a training framework log to labbook by itself.

Each module imports its framework only when one of its classes is made, so
``import labbook`` never pays for torch or xgboost. Every integration:

- logs on rank zero only (the ``RANK``/``LOCAL_RANK`` environment variables, or the
  framework's own notion of rank), so a distributed job makes one run, not one per process;
- never stops training when the notebook cannot be written: the error becomes a warning
  (``labbook.integrations`` logger) and training goes on, the run's journal keeping what
  was logged before.

=====================================  ================================  ======================
module                                 what to pass                      extra
=====================================  ================================  ======================
labbook.integrations.lightning         ``Trainer(logger=LabbookLogger())``  ``labbook[lightning]``
labbook.integrations.transformers      ``Trainer(callbacks=[LabbookCallback()])``  ``labbook[transformers]``
labbook.integrations.keras             ``model.fit(callbacks=[LabbookCallback()])``  ``labbook[keras]``
labbook.integrations.xgboost           ``xgboost.train(callbacks=[LabbookCallback()])``  ``labbook[xgboost]``
labbook.integrations.lightgbm          ``lightgbm.train(callbacks=[log_evaluation()])``  ``labbook[lightgbm]``
labbook.integrations.optuna            ``study.optimize(callbacks=[LabbookCallback()])``  ``labbook[optuna]``
=====================================  ================================  ======================

See docs/integrations.md.
"""
