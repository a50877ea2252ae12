"""Feature alignment, fusion and soft-sharing modules."""
from . import alignment, soft_sharing  # noqa: F401  (registers modules)
