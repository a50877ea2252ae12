"""The keys a metric will report, known from its settings before any evaluation.

``CheckpointHook(save_best=...)`` and ``runner.val_evaluator`` meet only after the first
validation epoch; knowing the keys statically lets a hook check ``save_best`` before
training (:class:`~mtl_plugin.engine.hooks.SaveBestCheckHook`). Known metrics:

- mmdet ``CocoMetric``: ``<metric>_<item>`` per ``metric`` (``bbox`` / ``segm``) and
  ``metric_items`` (default ``mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l``); ``proposal``:
  the ``AR`` items; ``proposal_fast``: ``AR@<n>`` per ``proposal_nums``;
- mmpose ``CocoMetric``: ``AP, AP .5, AP .75, AP (M), AP (L), AR, AR .5, AR .75, AR (M),
  AR (L)`` (``keypoints_crowd``: CrowdPose's ``AP(E), AP(M), AP(H)`` set);
- mmpose ``PCKAccuracy``: ``PCK`` / ``PCKh`` / ``tPCK`` per ``norm_item``; ``AUC``,
  ``EPE``, ``NME``;
- :class:`GroupedMetric`: ``<group>/<prefix>/<key>`` of each group's metrics, and
  ``mean/<prefix>/<key>`` for the keys every group reports (two groups or more; a mean is
  left out at run time when a group reports COCO's ``-1``, "not applicable");
- any metric with a ``metric_keys()`` method returning the unprefixed keys.

Every key is prefixed with the metric's ``prefix`` (``coco/bbox_mAP``), as
``BaseMetric.evaluate`` does.
"""
from typing import Any, Callable, Dict, List, Optional

from .grouped_metric import GroupedMetric

__all__ = ['metric_keys', 'evaluator_keys']

_DET_ITEMS = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l']
_PROPOSAL_ITEMS = ['AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000']
_POSE_COCO = ['AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)', 'AR', 'AR .5', 'AR .75', 'AR (M)',
              'AR (L)']
_POSE_CROWD = ['AP', 'AP .5', 'AP .75', 'AR', 'AR .5', 'AR .75', 'AP(E)', 'AP(M)', 'AP(H)']
_PCK = {'bbox': 'PCK', 'head': 'PCKh', 'torso': 'tPCK'}


def _mmdet_coco(metric: Any) -> List[str]:
    if metric.format_only:
        return []
    keys: List[str] = []
    for kind in metric.metrics:
        if kind == 'proposal_fast':
            keys += [f'AR@{n}' for n in metric.proposal_nums]
        elif kind == 'proposal':
            keys += list(metric.metric_items or _PROPOSAL_ITEMS)
        else:
            keys += [f'{kind}_{item}' for item in metric.metric_items or _DET_ITEMS]
    return keys


def _mmpose_coco(metric: Any) -> List[str]:
    if metric.format_only:
        return []
    return list(_POSE_CROWD if metric.iou_type == 'keypoints_crowd' else _POSE_COCO)


def _pck(metric: Any) -> List[str]:
    return [_PCK[item] for item in metric.norm_item if item in _PCK]


#: ``<module>.<class>`` -> keys of a built metric (unprefixed); matched on the exact class
_KNOWN: Dict[str, Callable[[Any], List[str]]] = {
    'mmdet.evaluation.metrics.coco_metric.CocoMetric': _mmdet_coco,
    'mmpose.evaluation.metrics.coco_metric.CocoMetric': _mmpose_coco,
    'mmpose.evaluation.metrics.keypoint_2d_metrics.PCKAccuracy': _pck,
    'mmpose.evaluation.metrics.keypoint_2d_metrics.AUC': lambda m: ['AUC'],
    'mmpose.evaluation.metrics.keypoint_2d_metrics.EPE': lambda m: ['EPE'],
    'mmpose.evaluation.metrics.keypoint_2d_metrics.NME': lambda m: ['NME'],
}


def _prefixed(metric: Any, keys: List[str]) -> List[str]:
    prefix = getattr(metric, 'prefix', None)
    return [f'{prefix}/{k}' for k in keys] if prefix else keys


def _raw_keys(metric: Any) -> Optional[List[str]]:
    """Unprefixed keys of one metric, or None when they cannot be known statically."""
    if isinstance(metric, GroupedMetric):
        return _grouped_keys(metric)
    own = getattr(metric, 'metric_keys', None)
    if callable(own):
        return list(own())
    known = _KNOWN.get(f'{type(metric).__module__}.{type(metric).__name__}')
    return known(metric) if known is not None else None


def _grouped_keys(metric: GroupedMetric) -> Optional[List[str]]:
    per_group: Dict[str, List[str]] = {}
    for group, metrics in metric.metrics.items():
        keys: List[str] = []
        for sub in metrics:
            sub_keys = metric_keys(sub)
            if sub_keys is None:
                return None
            keys += sub_keys
        per_group[str(group)] = keys
    out = [f'{g}/{k}' for g, keys in per_group.items() for k in keys]
    if len(per_group) > 1:
        first, *rest = per_group.values()
        out += [f'mean/{k}' for k in first if all(k in keys for keys in rest)]
    return out


def metric_keys(metric: Any) -> Optional[List[str]]:
    """The keys a built metric will report, with its prefix.

    Args:
        metric (BaseMetric): A built metric (e.g. ``GroupedMetric``, mmdet's ``CocoMetric``).

    Returns:
        list[str] | None: The keys, in the metric's order, or None when the metric's keys
        are not known before evaluation (a metric type not listed in the module doc).
    """
    keys = _raw_keys(metric)
    return None if keys is None else _prefixed(metric, keys)


def evaluator_keys(evaluator: Any) -> Optional[List[str]]:
    """The keys an ``Evaluator`` (its ``metrics``) will report, or None if any is unknown.

    Args:
        evaluator (Evaluator): A built MMEngine evaluator.

    Returns:
        list[str] | None: The keys of all its metrics, or None.
    """
    keys: List[str] = []
    for metric in getattr(evaluator, 'metrics', []):
        found = metric_keys(metric)
        if found is None:
            return None
        keys += found
    return keys
