"""Library code behind tools/analysis/* and tools/consolidate.py (imported by the tools)."""
