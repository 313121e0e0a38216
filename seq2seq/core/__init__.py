"""What every other part stands on: user errors (``errors``) and their one-line exit (``guard``),
atomic writes (``atomic``), devices (``devices``), the project root (``paths``), the special
token ids (``token_ids``), where MLflow's store is (``mlflow_store``) and reading what an earlier
stage wrote (``stage_outputs``)."""
