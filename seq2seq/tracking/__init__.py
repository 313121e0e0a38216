"""MLflow: ``store`` (writing that never breaks a stage, the run a stage logs into), ``runs`` (the
training run's params, curves, datasets and model), ``evaluations`` (a run per evaluation),
``exported`` (the ONNX export as a model of its training run), ``pyfunc_model`` (the trained model
as an ``mlflow.pyfunc`` model). Where the store is: :mod:`seq2seq.core.mlflow_store`."""
