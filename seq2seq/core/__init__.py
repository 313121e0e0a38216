"""What every other part stands on: params.yaml as typed, validated configs (``config``, with the
search settings declared once in ``search_settings``), user errors (``errors``) and their one-line
exit (``guard``), atomic writes (``atomic``), devices (``devices``) and the project root (``paths``)."""
