"""Multi-task loss weighting (fixed, scheduled, uncertainty, DWA, GradNorm, RLW).

Placeholder: filled in by the work on issue 5."""
