"""params.yaml as typed, validated configs: ``config`` (one dataclass per stage's section, checked once
where params.yaml is read; the decode section's search settings are declared in
:mod:`seq2seq.search.settings`), ``pipeline_inputs`` (the local files params.yaml names, which
dvc.yaml declares as deps)."""
