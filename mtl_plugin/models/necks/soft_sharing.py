"""Cross-stitch units and soft parameter sharing.

Placeholder: filled in by the work on issue 5."""
