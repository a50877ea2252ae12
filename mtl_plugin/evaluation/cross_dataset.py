"""Cross-dataset evaluation: train-group x eval-group matrix.

Placeholder: filled in by the work on issue 6."""
