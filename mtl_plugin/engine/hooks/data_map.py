"""DataMapHook: per-label confidence during training (Dataset Cartography).

Placeholder: filled in by the work on issue 6."""
