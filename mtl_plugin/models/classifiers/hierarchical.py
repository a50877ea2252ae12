"""HierarchicalClassifier: dataset head + one fine class head per dataset.

Placeholder: filled in by the work on issue 5."""
