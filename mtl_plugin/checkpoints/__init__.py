"""Checkpoints in and out of multi-head models.

In: :func:`load_single_head` / ``init_cfg=dict(type='SingleHeadPretrained', ...)`` take one
head and the shared backbone / neck from a stock single-head mmdet / mmpose checkpoint.
Out: :func:`export_head` writes one head as a stock config + checkpoint that plain mmdet /
mmpose load without the plugin (``tools/export_head.py``).
"""
from .export import DENSE_DETECTORS, export_head
from .stock_config import PluginTypeError
from .single_head import (SingleHeadMismatchError, SingleHeadPretrained, load_single_head,
                          single_head_key_map)

__all__ = ['DENSE_DETECTORS', 'PluginTypeError', 'SingleHeadMismatchError',
           'SingleHeadPretrained', 'export_head', 'load_single_head', 'single_head_key_map']
