"""Feature alignment, fusion and soft-sharing modules."""
from .alignment import (AdaptivePoolAlign, AttentionFusion, ChannelAlign, ConcatFusion,
                        resize_to)
from .soft_sharing import CrossStitchNetwork, CrossStitchUnit, SoftParameterSharing

__all__ = [
    'AdaptivePoolAlign', 'AttentionFusion', 'ChannelAlign', 'ConcatFusion', 'resize_to',
    'CrossStitchNetwork', 'CrossStitchUnit', 'SoftParameterSharing'
]
