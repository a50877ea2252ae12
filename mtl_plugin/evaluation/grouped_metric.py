"""``GroupedMetric``: each group evaluated by its own metric, in its own label space."""
import copy
from collections import OrderedDict
from numbers import Number
from typing import Any, Dict, List, Mapping, Optional, Sequence

from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.registry import EVALUATOR, METRICS

from ..config_checks import reject_stock_keys
from ..groups import Groups, normalize_group_key
from ..labels import LabelSpace
from ..routing import get_group_name
from .ann_file_check import check_ann_file


@METRICS.register_module()
class GroupedMetric(BaseMetric):
    """Route every prediction by ``group_name`` to that group's metric.

    Each sub-metric (mmdet ``CocoMetric``, mmpose ``CocoMetric`` / ``PCKAccuracy``, any
    metric of the current scope) sees only its group's samples and that group's own
    ``dataset_meta`` (taken from ``MultiSourceDataset``'s ``group_metainfo``). Keys are
    reported as ``<group>/<sub-metric key>`` (``person/coco/bbox_mAP``), plus
    ``mean/<key>`` for every numeric key that all groups report.

    Predictions made in a unified label space (marked ``pred_label_space='unified'`` by
    multi-head models, or from a dataset with ``label_space='unified'``) are mapped back to
    each group's labels, dropping the classes the group does not annotate.

    Collection across ranks uses MMEngine's own ``collect_results`` once, on one
    (group, per-metric results) entry per sample, so padding added by the sampler is
    dropped correctly, however many metrics a group has.

    Args:
        metrics (dict): Group name (or id: ``1`` / ``'1'``) -> metric config (or a list of
            configs). The keys are checked against the dataset's groups when
            ``dataset_meta`` is set: an unknown one is an ``UnknownGroupError`` naming the
            known groups.
        pred_label_space (str): ``'auto'`` (unified when the dataset declares a unified
            label space), ``'unified'`` or ``'group'``. Defaults to ``'auto'``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix before every key. Defaults to None.
    """

    def __init__(self,
                 metrics: Mapping[str, Any],
                 pred_label_space: str = 'auto',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs: Any) -> None:
        reject_stock_keys(type(self), kwargs)  # a stock ann_file / metric: names the fix
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not isinstance(metrics, Mapping) or not metrics:
            raise TypeError('GroupedMetric needs metrics=dict(<group name>=<metric cfg>, ...), '
                            f'but got {metrics!r}')
        if pred_label_space not in ('auto', 'unified', 'group'):
            raise ValueError("pred_label_space must be 'auto', 'unified' or 'group', "
                             f'but got {pred_label_space!r}')
        self.metrics: 'OrderedDict[str, List[BaseMetric]]' = OrderedDict()
        for raw, cfgs in metrics.items():
            group = normalize_group_key(raw, 'metrics', 'GroupedMetric')
            if group in self.metrics:
                raise ValueError(f'GroupedMetric: metrics lists group {group!r} twice; keep one')
            cfgs = cfgs if isinstance(cfgs, (list, tuple)) else [cfgs]
            self.metrics[group] = [m if isinstance(m, BaseMetric) else self._build(group, m)
                                   for m in cfgs]
        self.pred_label_space = pred_label_space
        self._label_space: Optional[LabelSpace] = None

    @staticmethod
    def _build(group: str, cfg: Any) -> BaseMetric:
        """Build one group's metric; an unknown type names the group and the fix."""
        try:
            return METRICS.build(cfg)
        except KeyError as err:
            kind = cfg.get('type') if isinstance(cfg, Mapping) else cfg
            if 'registry' not in str(err):
                raise
            raise KeyError(f'GroupedMetric: metric {kind!r} of group {group!r} is not a '
                           'registered metric in the current scope; check the spelling, or '
                           "give its scope (e.g. 'mmdet.CocoMetric', 'mmpose.PCKAccuracy')"
                           ) from None

    @property
    def dataset_meta(self) -> Optional[dict]:
        """Meta of the whole dataset; setting it hands each sub-metric its group's meta."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        self._dataset_meta = copy.deepcopy(dataset_meta)
        self._key_metrics_by_name(Groups.from_metainfo(dataset_meta))
        group_meta = dataset_meta.get('group_metainfo', {})
        for group, metrics in self.metrics.items():
            if group_meta and group not in group_meta:
                raise KeyError(f'GroupedMetric has a metric for group "{group}", which the '
                               f'dataset does not have; its groups: {list(group_meta)}')
            for metric in metrics:
                metric.dataset_meta = group_meta.get(group, dataset_meta)
        uncovered = [g for g in group_meta if g not in self.metrics]
        if uncovered:  # found here, when the loop is built: before any training step
            raise KeyError(f'GroupedMetric: the dataset\'s groups {uncovered} have no metric; '
                           f'add metrics=dict({uncovered[0]}=dict(type=...)) (configured: '
                           f'{list(self.metrics)})')
        for group, ann_file in (dataset_meta.get('group_ann_files') or {}).items():
            for metric in self.metrics.get(group, []):
                check_ann_file(group, ann_file, metric,
                               group_meta.get(group, {}).get('classes') or ())
        self._label_space = None
        if dataset_meta.get('label_spaces'):  # the dataset's own, with its class_mapping
            self._label_space = LabelSpace.from_dict(dataset_meta['label_spaces'])
        elif group_meta and all(m.get('classes') for m in group_meta.values()):
            self._label_space = LabelSpace(
                {g: m['classes'] for g, m in group_meta.items()},
                dataset_meta.get('unified_classes'))

    def _key_metrics_by_name(self, groups: Optional[Groups]) -> None:
        """Resolve the metrics' group keys (ids or names) to the dataset's group names."""
        if groups is None:
            ids = [k for k in self.metrics if isinstance(k, int)]
            if ids:
                raise KeyError(f'GroupedMetric: metrics are keyed by group ids {ids}, but the '
                               'dataset meta has no group_name_to_id to name them; key them by '
                               'group name or evaluate a MultiSourceDataset')
            return
        renamed: 'OrderedDict[str, List[BaseMetric]]' = OrderedDict()
        for key, metrics in self.metrics.items():
            name = groups.name_of(groups.resolve(key, 'metrics', 'GroupedMetric'))
            if name in renamed:
                raise ValueError(f'GroupedMetric: metrics lists group {name!r} twice (by id '
                                 'and by name); keep one')
            renamed[name] = metrics
        self.metrics = renamed

    def _preds_unified(self, sample: dict) -> bool:
        if self.pred_label_space != 'auto':
            return self.pred_label_space == 'unified'
        # multi-head models mark their merged predictions; a single head trained on a
        # unified dataset predicts in its label space
        return (sample.get('pred_label_space') == 'unified'
                or (self._dataset_meta or {}).get('label_space') == 'unified')

    def _to_group_labels(self, group: str, sample: dict) -> dict:
        pred = sample.get('pred_instances')
        if pred is None or 'labels' not in pred or not self._preds_unified(sample):
            return sample
        if self._label_space is None:
            raise ValueError('predictions are in a unified label space, but the dataset meta '
                             "has no per-group classes ('group_metainfo') to map them back")
        keep, local = self._label_space.to_group(group, pred['labels'])
        new_pred = {k: (v[keep] if hasattr(v, '__getitem__') and hasattr(v, 'shape')
                        and len(v) == len(keep) else v) for k, v in pred.items()}
        new_pred['labels'] = local
        return dict(sample, pred_instances=new_pred)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Let each group's metrics process that group's samples; keep (group, result)."""
        for sample in data_samples:
            group = get_group_name(sample)
            if group not in self.metrics:
                raise KeyError(f'sample of group "{group}" has no metric: add '
                               f'metrics["{group}"]; configured: {list(self.metrics)}')
            sample = self._to_group_labels(group, sample)
            # ONE entry per sample, whatever the number of sub-metrics: evaluate() cuts the
            # collected results to the dataset size to drop the sampler's padding
            per_metric = []
            for metric in self.metrics[group]:
                before = len(metric.results)
                metric.process(data_batch, [sample])
                per_metric.append(metric.results[before:])
                del metric.results[before:]
            self.results.append((group, per_metric))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute every group's metrics on its share of the collected results."""
        out: Dict[str, float] = OrderedDict()
        for group, metrics in self.metrics.items():
            for i, metric in enumerate(metrics):
                mine = [r for g, per_metric in results if g == group for r in per_metric[i]]
                if not mine:
                    continue
                values = metric.compute_metrics(mine)
                for key, value in values.items():
                    key = f'{metric.prefix}/{key}' if metric.prefix else key
                    out[f'{group}/{key}'] = value
        out.update(self._means(out))
        return out

    def _means(self, out: Dict[str, Any]) -> Dict[str, float]:
        per_key: Dict[str, List[float]] = {}
        for key, value in out.items():
            group, rest = key.split('/', 1)
            # COCO's -1 means "not applicable" (e.g. no large objects): not averaged
            if isinstance(value, Number) and value >= 0:
                per_key.setdefault(rest, []).append(float(value))
        n = len(self.metrics)
        return {f'mean/{k}': round(sum(v) / n, 4) for k, v in per_key.items()
                if len(v) == n and n > 1}


@EVALUATOR.register_module(name='GroupedMetric')
def build_grouped_evaluator(**kwargs: Any) -> Evaluator:
    """Build ``Evaluator([GroupedMetric(**kwargs)])``.

    MMEngine's Runner reads a ``val_evaluator`` dict that has a ``metrics`` key as an
    *evaluator* config; this entry lets ``val_evaluator = dict(type='GroupedMetric',
    metrics=dict(...))`` work as written.
    """
    return Evaluator([GroupedMetric(**kwargs)])
