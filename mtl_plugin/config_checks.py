"""Keys of a stock config that our classes cannot take: one check, one error format.

A config that inherits a stock mmdet / mmpose config and changes a ``type`` to one of ours
keeps every other key of the stock dict (MMEngine merges dicts key by key). Without this
check each left-over key is a bare ``TypeError: __init__() got an unexpected keyword
argument 'bbox_head'``; with it, the error names the key, the class and the fix::

    MultiHeadDetector got the key 'bbox_head', which it does not take (a key of an inherited
    stock config?): use heads=dict(<name>=dict(type='RetinaHead', ...)), one head per
    dataset, and drop the inherited key: bbox_head=None, or _delete_=True on model

Each class takes ``**kwargs`` and calls :func:`reject_stock_keys` first thing in its
``__init__``, so the error comes while the config is built, before the first iteration.
A stock key set to ``None`` is the same as leaving it out: that is how a config drops an
inherited key (``bbox_head=None``) and keeps the rest of the stock dict.
"""
import difflib
import inspect
from typing import Any, Dict, Mapping, Tuple

__all__ = ['StockKeyError', 'STOCK_KEYS', 'reject_stock_keys']

_MODEL_DROP = 'drop the inherited key: {key}=None, or _delete_=True on model'
_DATASET = ("it belongs to each source: datasets=[dict(type=..., group_name=..., {key}=...)]; "
            'add _delete_=True to the dataset so that the stock dataset keys are not merged in')
_METRIC = ("it belongs to each group's metric: metrics=dict(<group>=dict(type='CocoMetric', "
           '{key}=...)); add _delete_=True to the evaluator so that the stock metric keys are '
           'not merged in')
_LOSS = ("it belongs to the wrapped loss: loss=dict(type='mmdet.FocalLoss', {key}=...); add "
         '_delete_=True to the loss (loss_cls=dict(_delete_=True, ...)) so that the stock '
         "loss's keys are not merged in")
_POSE_LOSS = ('add _delete_=True to the loss so that the stock loss keys are not merged in, '
              'or remove {key}')
_SAMPLER = ('{owner} always draws at random (seeded by seed + epoch), so it takes no {key}; '
            'add _delete_=True to the sampler so that the stock sampler keys are not merged in')
_SAMPLER_OTHER = ('add _delete_=True to the sampler so that the stock sampler keys are not '
                  'merged in, or remove {key}')

#: class name -> (fix of its known stock keys by key, fix of any other key); ``{key}`` and
#: ``{owner}`` are filled in
STOCK_KEYS: Dict[str, Tuple[Dict[str, str], str]] = {
    'MultiHeadDetector': ({
        'bbox_head': "use heads=dict(<name>=dict(type='RetinaHead', ...)), one head per "
                     'dataset, and ' + _MODEL_DROP,
        'roi_head': 'use rpn_head=... (shared) and heads=dict(<name>=<RoI head cfg>), one RoI '
                    'head per dataset, and ' + _MODEL_DROP,
    }, 'remove it, or add _delete_=True to model'),
    'MultiHeadPoseEstimator': ({
        'head': "use heads=dict(<name>=dict(type='HeatmapHead', ...)), one head per dataset, "
                'and ' + _MODEL_DROP,
    }, 'remove it, or add _delete_=True to model'),
    'MultiSourceDataset': (dict.fromkeys(
        ('data_root', 'ann_file', 'data_prefix', 'filter_cfg', 'backend_args', 'test_mode',
         'data_mode', 'serialize_data', 'indices', 'max_refetch', 'bbox_file'), _DATASET),
        _DATASET),
    'GroupedMetric': (dict.fromkeys(
        ('ann_file', 'metric', 'format_only', 'backend_args', 'outfile_prefix', 'classwise',
         'iou_thrs', 'proposal_nums', 'metric_items', 'use_mp_eval', 'sort_categories',
         'use_area', 'iou_type', 'score_mode', 'keypoint_score_thr', 'nms_mode', 'nms_thr',
         'gt_converter', 'pred_converter', 'thr', 'norm_item'), _METRIC), _METRIC),
    'GroupWeightedLoss': (dict.fromkeys(
        ('gamma', 'alpha', 'loss_weight', 'reduction', 'activated', 'eps', 'use_mask',
         'class_weight', 'ignore_index', 'avg_non_ignore', 'beta', 'mode'), _LOSS), _LOSS),
    'GroupWeightedKeypointMSELoss': ({}, _POSE_LOSS),
    'GroupWeightedFocalHeatmapLoss': ({}, _POSE_LOSS),
    'WeightedGroupSampler': ({'shuffle': _SAMPLER}, _SAMPLER_OTHER),
    'InfiniteWeightedGroupSampler': ({'shuffle': _SAMPLER}, _SAMPLER_OTHER),
    'GroupBatchSampler': ({}, 'add _delete_=True to the batch_sampler so that the stock '
                              'batch sampler keys are not merged in, or remove {key}'),
}


class StockKeyError(TypeError):
    """A config key the class does not take (a ``TypeError``, as Python's own)."""


def _accepted(owner: type) -> Tuple[str, ...]:
    """Names of the explicit parameters of ``owner.__init__`` (for close-name hints); a
    pass-through ``__init__(*args, **kwargs)`` is looked through to its base's."""
    for klass in owner.__mro__:
        params = inspect.signature(klass.__init__).parameters.values()
        names = tuple(p.name for p in params if p.name != 'self' and p.kind in (
            p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if names:
            return names
    return ()


def _message(owner: type, key: str, fixes: Mapping[str, str], default: str) -> str:
    name = owner.__name__
    close = difflib.get_close_matches(key, _accepted(owner), n=1)
    if close and key not in fixes:  # a typo of a real argument, not a stock key
        return f'{name} got the key {key!r}, which it does not take: did you mean {close[0]!r}?'
    fix = fixes.get(key, default).format(key=key, owner=name)
    return (f'{name} got the key {key!r}, which it does not take (a key of an inherited '
            f'stock config?): {fix}')


def reject_stock_keys(owner: type, kwargs: Mapping[str, Any]) -> None:
    """Raise one clear error for keyword arguments ``owner`` does not take.

    Args:
        owner (type): The class being built (its name keys :data:`STOCK_KEYS`; its
            ``__init__`` parameters give the close-name hints).
        kwargs (Mapping[str, Any]): The keyword arguments ``owner.__init__`` received in
            ``**kwargs``. A known stock key of ``owner`` set to ``None`` is accepted (it drops
            the inherited value).

    Raises:
        StockKeyError: Naming the first key left (and the others), the class and the fix.
    """
    if not isinstance(owner, type):
        raise TypeError(f'reject_stock_keys: owner must be a class, but got {owner!r}')
    fixes, default = STOCK_KEYS.get(owner.__name__, ({}, 'remove it'))
    bad = [k for k in kwargs if not (kwargs[k] is None and k in fixes)]  # config order
    if bad:
        more = f'; it also got {bad[1:]}' if len(bad) > 1 else ''
        raise StockKeyError(_message(owner, bad[0], fixes, default) + more)
