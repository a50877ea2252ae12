"""Label spaces at the detector's doors: GT in, predictions and GT out.

``MultiHeadDetector`` trains each head in its own label space and predicts in one merged
space. What comes in and goes out is named by class, so that any consumer that indexes
``dataset_meta['classes']`` with a label (mmdet's ``DetLocalVisualizer``, ``CocoMetric``,
``GroupedMetric``) reads the right class:

- GT in: group-local labels (``MultiSourceDataset(label_space='group')``) or unified ones
  (``label_space='unified'``, marked ``gt_label_space='unified'`` on every sample) are
  both mapped into the head's classes;
- out: predictions, and the GT of the returned samples, are labelled in the *output
  classes*: ``test_cfg.output_classes`` if given (a plain test set whose classes are in
  another order), else the unified classes of the dataset the model serves (what its
  ``metainfo['classes']`` says), else the model's own unified classes.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ...labels import LabelSpace


def name_table(src: Sequence[str], dst: Sequence[str]) -> Tensor:
    """Label table by class name: ``table[i]`` is the index of ``src[i]`` in ``dst``, or -1.

    Args:
        src (Sequence[str]): Classes the labels are in now, in label order.
        dst (Sequence[str]): Classes to label them in.

    Returns:
        Tensor: (len(src),) int64.
    """
    index = {c: i for i, c in enumerate(dst)}
    return torch.tensor([index.get(c, -1) for c in src], dtype=torch.long)


def relabel(instances: InstanceData, table: Optional[Tensor]) -> InstanceData:
    """``instances`` with ``labels`` looked up in ``table``; entries mapped to -1 are
    dropped (a class the output space does not have). ``table=None``: unchanged."""
    if table is None or len(instances) == 0:
        return instances
    labels = table.to(instances.labels.device)[instances.labels]
    keep = labels >= 0
    out = instances[keep] if not bool(keep.all()) else instances.clone()
    out.labels = labels[keep]
    return out


def output_table(model_classes: Sequence[str], out_classes: Sequence[str],
                 explicit: bool = False) -> Optional[Tensor]:
    """Table model-unified label -> output label (-1: not an output class), None if equal.

    Args:
        model_classes (Sequence[str]): The model's unified classes.
        out_classes (Sequence[str]): The output classes.
        explicit (bool): They come from ``test_cfg.output_classes``: every one must be a
            class of the model. Defaults to False.
    """
    if tuple(model_classes) == tuple(out_classes):
        return None
    unknown = [c for c in out_classes if c not in model_classes]
    if explicit and unknown:
        raise ValueError(f'test_cfg.output_classes names classes {unknown} that the model '
                         f'does not predict; its classes: {list(model_classes)}')
    return name_table(model_classes, out_classes)


def unified_to_head_table(space: Optional[LabelSpace], model_space: LabelSpace, head: str,
                          group: str) -> Tensor:
    """Table dataset-unified label -> ``head``'s label, by name, for a sample of ``group``
    whose GT is unified (``gt_label_space='unified'``).

    Args:
        space (LabelSpace, optional): The data's label space (from the samples).
        model_space (LabelSpace): The model's (heads -> unified).
        head (str): The head the sample trains.
        group (str): The sample's group.

    Raises:
        ValueError: No data label space, or a class of the group the head does not predict.
    """
    if space is None:
        raise ValueError(f'a sample of group "{group}" has unified GT labels '
                         "(gt_label_space='unified') but carries no label_space; build the "
                         'data with MultiSourceDataset')
    table = name_table(space.unified_classes, model_space.unified_names(head))
    lost = [space.unified_classes[i] for i in space.lookup(group).tolist() if table[i] < 0]
    if lost:
        raise ValueError(f'classes {lost} of group "{group}" are not predicted by head '
                         f'"{head}" (classes {model_space.group_classes[head]})')
    return table


def check_heads(heads: Optional[Sequence[str]], known: Sequence[str]) -> Optional[list]:
    """Validate ``test_cfg.heads`` (the heads merged inference runs; None: all)."""
    if heads is None:
        return None
    heads = [heads] if isinstance(heads, str) else list(heads)
    if not heads or any(h not in known for h in heads):
        raise KeyError(f'test_cfg.heads must name heads of the model {list(known)}, '
                       f'but got {heads!r}')
    return heads


def check_classes(classes: Optional[Sequence[str]], key: str) -> Optional[Tuple[str, ...]]:
    """Validate a list of class names from a config (None passes)."""
    if classes is None:
        return None
    if isinstance(classes, str) or not all(isinstance(c, str) for c in classes) or \
            len(set(classes)) != len(classes) or not classes:
        raise TypeError(f'{key} must be a non-empty list of distinct class names, '
                        f'but got {classes!r}')
    return tuple(classes)


def data_space(met: dict) -> Optional[LabelSpace]:
    """The label space of the data the model last met (its serialised form in ``met``)."""
    space = met.get('label_space')
    return LabelSpace.from_dict(space) if space else None


def gt_out_table(space: Optional[LabelSpace], sample, out_classes: Sequence[str]
                 ) -> Optional[Tensor]:
    """Table GT label -> output label of one sample, None when it needs no change.

    A sample of a ``MultiSourceDataset`` holds its group's local labels (or the unified
    ones, ``gt_label_space='unified'``); a sample of a plain dataset (no group) holds
    the labels of that dataset's classes and is left as it is.
    """
    meta = sample.metainfo
    group = meta.get('group_name')
    if space is None or group is None or group not in space.group_classes:
        return None
    if meta.get('gt_label_space') == 'unified':
        names: Sequence[str] = space.unified_classes
    else:
        names = space.unified_names(group)
    if tuple(names) == tuple(out_classes):
        return None
    return name_table(names, out_classes)


def gt_to_output(space: Optional[LabelSpace], sample, out_classes: Sequence[str]) -> None:
    """Relabel a returned sample's GT into the output classes (in place, on a copy of
    its ``gt_instances``), marking it ``gt_label_space='unified'``."""
    if 'gt_instances' not in sample or 'labels' not in sample.gt_instances:
        return
    group = sample.metainfo.get('group_name')
    if space is None or group not in space.group_classes:
        return  # a plain dataset's sample: its labels are already its dataset's classes
    table = gt_out_table(space, sample, out_classes)
    if table is not None:
        sample.gt_instances = relabel(sample.gt_instances, table)
    sample.set_metainfo(dict(gt_label_space='unified'))
