"""The saved model, which training writes and export and decoding read: ``bundle`` (the folder:
config.json, weights and both tokenizers; save and load), ``files`` (its file names and
config.json) and ``locate`` (a model folder as given, or one fetched from an MLflow model URI;
torch-free, as the exported model's runtime locates models too)."""
