"""MLflow: ``store`` (where runs go, the run a stage logs into), ``runs`` (the training run's params,
curves, datasets and model), ``pyfunc_model`` (the trained model as an ``mlflow.pyfunc`` model)."""
