"""The remote backends' sinks, one module each (``mlflow``, ``wandb``, ``tensorboard``), loaded by name when used."""
