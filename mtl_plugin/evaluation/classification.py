"""Classification metrics: accuracy, hierarchical (dataset + class) accuracy.

Placeholder: filled in by the work on issue 5."""
