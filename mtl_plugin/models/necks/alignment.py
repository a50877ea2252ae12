"""Feature alignment and fusion modules.

Placeholder: filled in by the work on issue 5."""
