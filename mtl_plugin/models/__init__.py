"""Models: multi-head detectors and estimators, heads, losses."""
__all__: list = []
