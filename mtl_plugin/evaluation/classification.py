"""Classification metrics: top-k accuracy, and hierarchical (dataset + class) accuracy.

Both read the fields that :class:`~mtl_plugin.models.HierarchicalClassifier` sets on its
data samples; :class:`ClsAccuracy` only needs ``pred_score`` and ``gt_label``, so it also
works per group inside ``GroupedMetric``::

    val_evaluator = dict(type='GroupedMetric', metrics=dict(
        person=dict(type='ClsAccuracy'), animal=dict(type='ClsAccuracy', topk=(1, 2))))
"""
import numbers
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from ..routing import get_group_name

__all__ = ['ClsAccuracy', 'HierarchicalAccuracy']


def _get(sample: Mapping, key: str, metric: str) -> Any:
    if key not in sample:
        raise KeyError(f'{metric}: data sample has no "{key}"; it needs the predictions of a '
                       'classifier (HierarchicalClassifier) on samples packed with gt_label '
                       f'(PackClsInputs); got keys {sorted(sample)}')
    return sample[key]


def _as_int(value: Any) -> int:
    """An int from an int, a 0-dim / 1-element tensor or array."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return int(value.reshape(-1)[0])
    return int(value)


def _percent(hits: Sequence[bool]) -> float:
    return float(np.mean(hits) * 100.0) if len(hits) else float('nan')


@METRICS.register_module()
class ClsAccuracy(BaseMetric):
    """Top-k accuracy (in %) of ``pred_score`` against ``gt_label``.

    A sample counts as correct at k when fewer than k classes score strictly higher than
    its gold class (ties favour the gold class; k above the number of classes is always
    correct). Keys: ``top<k>`` for every k, prefixed ``accuracy/`` by default.

    Args:
        topk (int | Sequence[int]): The k's. Defaults to (1,).
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to ``'accuracy'``.
    """

    default_prefix = 'accuracy'

    def __init__(self,
                 topk: Union[int, Sequence[int]] = (1, ),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        ks = (topk, ) if isinstance(topk, numbers.Integral) else topk
        if isinstance(ks, str) or not isinstance(ks, (list, tuple)) or not ks or not all(
                isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 1
                for k in ks):
            raise ValueError(f'ClsAccuracy: topk must be a positive int or a non-empty sequence '
                             f'of them, but got {topk!r}')
        self.topk: Tuple[int, ...] = tuple(int(k) for k in ks)

    def process(self, data_batch: Any, data_samples: Sequence[Mapping]) -> None:
        """Keep the rank of each sample's gold class (0 = top scored)."""
        for sample in data_samples:
            score = torch.as_tensor(_get(sample, 'pred_score', 'ClsAccuracy')).reshape(-1)
            label = _as_int(_get(sample, 'gt_label', 'ClsAccuracy'))
            if not 0 <= label < score.numel():
                raise ValueError(f'ClsAccuracy: gt_label {label} is outside the '
                                 f'{score.numel()} scores of pred_score')
            self.results.append(int((score > score[label]).sum()))

    def compute_metrics(self, results: List[int]) -> Dict[str, float]:
        """``top<k>`` accuracy in % for every k."""
        ranks = np.asarray(results)
        return OrderedDict((f'top{k}', _percent(ranks < k)) for k in self.topk)


@METRICS.register_module()
class HierarchicalAccuracy(BaseMetric):
    """Accuracy of a dataset-then-class prediction, per group and on average (in %).

    Reads ``group_name``, ``gt_label``, ``pred_label_known``, ``pred_group_name`` and
    ``pred_label`` of every sample. Keys:

    - ``<group>/accuracy``: class accuracy with the dataset known (``pred_label_known``);
    - ``<group>/dataset_accuracy``: share of the group's samples whose dataset is right;
    - ``<group>/e2e_accuracy``: dataset and class both right (``pred_label``);
    - ``dataset_accuracy``: dataset accuracy over all samples;
    - ``mean/accuracy``, ``mean/dataset_accuracy``, ``mean/e2e_accuracy``: unweighted
      means over the groups present.

    Groups are reported in the order of the dataset's ``group_names`` when known,
    otherwise in order of first appearance.

    Args:
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to none.
    """

    default_prefix = ''

    def process(self, data_batch: Any, data_samples: Sequence[Mapping]) -> None:
        """Keep ``(group, gold, known-dataset prediction, predicted group, prediction)``."""
        name = type(self).__name__
        for sample in data_samples:
            self.results.append((get_group_name(sample),
                                 _as_int(_get(sample, 'gt_label', name)),
                                 _as_int(_get(sample, 'pred_label_known', name)),
                                 str(_get(sample, 'pred_group_name', name)),
                                 _as_int(_get(sample, 'pred_label', name))))

    def _group_order(self, results: List[tuple]) -> List[str]:
        seen = list(OrderedDict.fromkeys(r[0] for r in results))
        known = list((self.dataset_meta or {}).get('group_names') or ())
        return [g for g in known if g in seen] + [g for g in seen if g not in known]

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        """Per-group, overall and mean accuracies in % (see the class docstring)."""
        out: Dict[str, float] = OrderedDict()
        per_key: Dict[str, List[float]] = OrderedDict(
            (k, []) for k in ('accuracy', 'dataset_accuracy', 'e2e_accuracy'))
        for group in self._group_order(results):
            rows = [r for r in results if r[0] == group]
            values = dict(
                accuracy=_percent([known == gt for _, gt, known, _, _ in rows]),
                dataset_accuracy=_percent([pg == group for *_, pg, _ in rows]),
                e2e_accuracy=_percent([pg == group and pred == gt
                                       for _, gt, _, pg, pred in rows]))
            for key, value in values.items():
                out[f'{group}/{key}'] = value
                per_key[key].append(value)
        out['dataset_accuracy'] = _percent([r[3] == r[0] for r in results])
        for key, values in per_key.items():
            out[f'mean/{key}'] = float(np.mean(values)) if values else float('nan')
        return out
