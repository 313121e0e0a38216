"""What a run reports: ``scoring`` (sacreBLEU BLEU / chrF / TER with signatures, multi-reference,
by source length) and ``figures`` (charts and attention heatmaps)."""
