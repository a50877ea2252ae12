"""Does a group's metric evaluate on the annotation file of that group's images?

A metric given another group's file (swapped ``ann_file`` entries) only failed after the
whole evaluation pass, with a raw ``IndexError`` from the COCO API. The check runs when the
metric gets the dataset's meta, i.e. when MMEngine builds the validation / test loop, before
any training step.
"""
import os.path as osp
from typing import Any, Optional, Sequence, Set, Tuple

from mmengine.fileio import load

__all__ = ['check_ann_file']


def _images(images: Any) -> Set[Tuple[Any, Any]]:
    """(id, file_name) of every image record."""
    return {(img.get('id'), img.get('file_name')) for img in images}


def _metric_images(metric: Any) -> Optional[Set[Tuple[Any, Any]]]:
    """Images of the COCO file a metric loaded (mmdet ``_coco_api``, mmpose ``coco``)."""
    for attr in ('_coco_api', 'coco'):
        api = getattr(metric, attr, None)
        if api is not None and isinstance(getattr(api, 'imgs', None), dict):
            return _images(api.imgs.values())
    return None


def _check_classes(group: str, classes: Sequence[str], metric: Any) -> None:
    """The group's classes must be categories of the metric's file (else COCO's IndexError)."""
    api = getattr(metric, '_coco_api', None)  # mmdet's CocoMetric looks classes up by name
    cats = getattr(api, 'cats', None)
    if not isinstance(cats, dict) or not classes:
        return
    names = {c.get('name') for c in cats.values()}
    missing = [c for c in classes if c not in names]
    if missing:
        raise ValueError(
            f'GroupedMetric: the metric of group "{group}" ({type(metric).__name__}) '
            f"evaluates on an annotation file whose categories lack the group's classes "
            f'{missing} (it has {sorted(names, key=str)}); give metrics["{group}"] the '
            "group's own ann_file (are two groups' ann_file swapped?)")


def check_ann_file(group: str, source_ann_file: Optional[str], metric: Any,
                   classes: Sequence[str] = ()) -> None:
    """Raise when ``metric``'s annotation file is not the group's: its categories lack the
    group's classes, or it lacks images of the group's own file.

    Args:
        group (str): The group.
        source_ann_file (str, optional): The annotation file of the group's source.
        metric (Any): One of the group's metrics (checked when it loaded a COCO file).
        classes (Sequence[str]): The group's classes. Defaults to ().

    Raises:
        ValueError: The group's classes are not categories of the metric's file, or some
            images (id, file name) of the source's file are not in the
            metric's file, naming the source's file and the fix.
    """
    _check_classes(group, classes, metric)
    metric_images = _metric_images(metric)
    if metric_images is None or not source_ann_file or not osp.isfile(source_ann_file):
        return
    metric_file = getattr(metric, 'ann_file', None)
    if metric_file and osp.isfile(metric_file) and osp.samefile(metric_file, source_ann_file):
        return
    source = load(source_ann_file)
    images = _images(source.get('images', [])) if isinstance(source, dict) else set()
    missing = images - metric_images
    if missing:
        example = sorted(missing, key=str)[0]
        raise ValueError(
            f'GroupedMetric: the metric of group "{group}" ({type(metric).__name__}) '
            f'evaluates on an annotation file without {len(missing)} of the {len(images)} '
            f'images of the group\'s own file {source_ann_file} (e.g. id {example[0]!r}, '
            f'{example[1]!r}); give metrics["{group}"] ann_file=\'{source_ann_file}\' (are '
            "two groups' ann_file swapped?)")
