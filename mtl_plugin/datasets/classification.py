"""Classification datasets and transforms: generated single-object images, COCO crops.

- :class:`ClsJsonDataset` reads MMEngine ``BaseDataset`` files
  ``{"metainfo": {"classes": [...]}, "data_list": [{"img_path", "gt_label"}]}`` (written by
  :func:`mtl_plugin.synthetic.generate_classification`).
- :class:`CocoCropClsDataset` turns every non-crowd COCO instance into one sample (the
  image path, its box and its category).
- :class:`CropInstance` cuts that box out of the loaded image; :class:`PackClsInputs`
  packs an image and its label for a classifier.

Typical pipeline of a crop dataset::

    [dict(type='mmcv.LoadImageFromFile'), dict(type='CropInstance', padding=0.1),
     dict(type='mmcv.Resize', scale=(64, 64), keep_ratio=False), dict(type='PackClsInputs')]

Wrapped in :class:`MultiSourceDataset`, every packed sample also carries ``group_id`` /
``group_name`` in its metainfo.
"""
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from mmcv.image import imcrop
from mmcv.image.geometric import bbox_clip, bbox_scaling
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.fileio import get_local_path, join_path, load
from mmengine.registry import DATASETS, TRANSFORMS
from mmengine.structures import BaseDataElement
from pycocotools.coco import COCO

__all__ = ['ClsJsonDataset', 'CocoCropClsDataset', 'CropInstance', 'PackClsInputs']


def _check_label(label: Any, num_classes: int, where: str) -> int:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or \
            not 0 <= label < num_classes:
        raise ValueError(f'{where}: gt_label must be an int in [0, {num_classes}), '
                         f'but got {label!r}')
    return int(label)


@DATASETS.register_module()
class ClsJsonDataset(BaseDataset):
    """Image classification from an MMEngine ``BaseDataset``-format JSON file.

    The file holds ``metainfo.classes`` (the label order) and a ``data_list`` of
    ``dict(img_path=..., gt_label=k)``; ``img_path`` is joined with ``data_root`` +
    ``data_prefix['img_path']`` as :class:`~mmengine.dataset.BaseDataset` does. Labels are
    checked against the classes on loading. All other arguments are BaseDataset's.

    Example:
        >>> dict(type='ClsJsonDataset', data_root='data/synthetic_cls',
        ...      ann_file='annotations/cls_animal_train.json', pipeline=[...])
    """

    def load_data_list(self) -> List[dict]:
        """Load the samples; check ``classes`` and every ``gt_label``."""
        annotations = load(self.ann_file)
        if not isinstance(annotations, dict) or 'data_list' not in annotations:
            keys = sorted(annotations) if isinstance(annotations, dict) else []
            raise ValueError(f'{self.ann_file}: expected a dict with "metainfo" and "data_list" '
                             '(MMEngine BaseDataset format), but got '
                             f'{type(annotations).__name__} with keys {keys}')
        file_classes = (annotations.get('metainfo') or {}).get('classes')
        classes = self._metainfo.get('classes', file_classes)
        if not classes:
            raise ValueError(f'{self.ann_file}: needs metainfo.classes (the class names in label '
                             'order) in the file or in the dataset config')
        if file_classes is not None and tuple(file_classes) != tuple(classes):
            raise ValueError(f'metainfo classes {tuple(classes)} of the config differ from the '
                             f'classes {tuple(file_classes)} of {self.ann_file}, whose labels '
                             'index the latter: drop metainfo.classes from the config')
        for key, value in (annotations.get('metainfo') or {}).items():
            self._metainfo.setdefault(key, value)
        self._metainfo['classes'] = tuple(classes)
        data_list = []
        for i, raw in enumerate(annotations['data_list']):
            info = self.parse_data_info(dict(raw))
            if 'gt_label' in info:
                info['gt_label'] = _check_label(info['gt_label'], len(classes),
                                                f'{self.ann_file} data_list[{i}]')
            data_list.append(info)
        return data_list

    def get_cat_ids(self, idx: int) -> List[int]:
        """Label of sample ``idx`` as a list (for class-aware samplers / wrappers)."""
        return [self.get_data_info(idx)['gt_label']]

    def get_gt_labels(self) -> np.ndarray:
        """Labels of all samples, shape (N,), int64."""
        return np.array([self.get_data_info(i)['gt_label'] for i in range(len(self))],
                        dtype=np.int64)


@DATASETS.register_module()
class CocoCropClsDataset(BaseDataset):
    """One classification sample per COCO instance (the crop of its box).

    Every non-crowd annotation whose box is at least ``min_size`` pixels wide and high
    becomes a sample ``dict(img_path, bbox, gt_label, img_id, ann_id, category_id)``, in
    the order of the file's ``annotations`` list; ``bbox`` is the COCO ``[x, y, w, h]``
    box as ``[x1, y1, x2, y2]`` floats. :class:`CropInstance` cuts it out after
    ``LoadImageFromFile``.

    **Class order.** ``metainfo['classes']`` are the file's categories sorted by category
    id, and ``gt_label`` is the index of the instance's category in that order. With
    ``metainfo=dict(classes=[...])`` in the config, only those category names are kept, in
    the given order (instances of other categories are skipped), as mmdet's
    ``CocoDataset`` does.

    Args:
        min_size (float): Minimum box width and height in pixels. Defaults to 1.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments (``ann_file``,
            ``data_root``, ``data_prefix=dict(img_path=...)``, ``pipeline``, ...).
    """

    def __init__(self, *args: Any, min_size: float = 1.0, **kwargs: Any) -> None:
        if isinstance(min_size, bool) or not isinstance(min_size, (int, float)) or \
                not 0 <= min_size < float('inf'):
            raise ValueError(f'CocoCropClsDataset: min_size must be a finite number >= 0, '
                             f'but got {min_size!r}')
        self.min_size = float(min_size)
        super().__init__(*args, **kwargs)

    def _classes(self, coco: COCO) -> Dict[int, int]:
        """Category id -> label; sets ``metainfo['classes']``."""
        cats = sorted(coco.loadCats(coco.getCatIds()), key=lambda c: c['id'])
        names = self._metainfo.get('classes')
        if names is None:
            names = [c['name'] for c in cats]
        by_name = {c['name']: c['id'] for c in cats}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f'CocoCropClsDataset: classes {missing} are not categories of '
                             f'{self.ann_file}; its categories: {list(by_name)}')
        self._metainfo['classes'] = tuple(names)
        return {by_name[n]: label for label, n in enumerate(names)}

    def load_data_list(self) -> List[dict]:
        """One sample per kept instance (see the class docstring)."""
        with get_local_path(self.ann_file) as path:
            coco = COCO(path)
        label_of = self._classes(coco)
        data_list = []
        for ann in coco.dataset.get('annotations', []):
            x, y, w, h = (float(v) for v in ann['bbox'])
            if ann.get('iscrowd', 0) or ann['category_id'] not in label_of or \
                    w < self.min_size or h < self.min_size:
                continue
            img = coco.imgs[ann['image_id']]
            data_list.append(dict(
                img_path=join_path(self.data_prefix.get('img_path', ''), img['file_name']),
                bbox=[x, y, x + w, y + h], gt_label=label_of[ann['category_id']],
                img_id=ann['image_id'], ann_id=ann['id'], category_id=ann['category_id']))
        return data_list

    def get_cat_ids(self, idx: int) -> List[int]:
        """Label of sample ``idx`` as a list (for class-aware samplers / wrappers)."""
        return [self.get_data_info(idx)['gt_label']]


@TRANSFORMS.register_module()
class CropInstance(BaseTransform):
    """Cut an instance's box, enlarged by ``padding``, out of the image.

    The box grows by ``padding`` times its width (height) on the left and right (top and
    bottom) sides, then is clipped to the image (``mmcv.imcrop``; no fill outside).

    Required keys: ``img`` (H, W, C), ``bbox`` ([x1, y1, x2, y2], pixels).

    Modified keys: ``img`` (h, w, C), ``img_shape``.

    Added keys: ``crop_bbox`` ([x1, y1, x2, y2] int, the cut region in the original
    image, ends exclusive).

    Args:
        padding (float): Margin per side, as a fraction of the box size; >= 0.
            Defaults to 0.1.
    """

    def __init__(self, padding: float = 0.1) -> None:
        if isinstance(padding, bool) or not isinstance(padding, (int, float)) or \
                not 0 <= padding < float('inf'):
            raise ValueError(f'CropInstance: padding must be a finite number >= 0, but got '
                             f'{padding!r}')
        self.padding = float(padding)

    def transform(self, results: dict) -> dict:
        """Crop ``results['img']`` to ``results['bbox']`` (+ padding)."""
        if 'bbox' not in results or 'img' not in results:
            raise KeyError('CropInstance needs "img" and "bbox" in results: load the image '
                           'with LoadImageFromFile first, on a dataset that gives a "bbox" '
                           f'(CocoCropClsDataset); got keys {sorted(results)}')
        x1, y1, x2, y2 = (float(v) for v in results['bbox'])
        img = results['img']
        # mmcv counts x2 / y2 inclusively: pass the last pixel, not the end
        box = np.array([x1, y1, x2 - 1, y2 - 1])
        scale = 1 + 2 * self.padding
        patch = imcrop(img, box, scale=scale)
        if patch.size == 0:
            raise ValueError(f'CropInstance: box {results["bbox"]} of {results.get("img_path")} '
                             f'is empty inside the image of shape {img.shape[:2]}')
        # the region imcrop cut, computed by the same mmcv steps
        cx0, cy0, cx1, cy1 = bbox_clip(bbox_scaling(box[None], scale).astype(np.int32),
                                       img.shape)[0].tolist()
        results['crop_bbox'] = [cx0, cy0, cx1 + 1, cy1 + 1]
        results['img'] = patch
        results['img_shape'] = patch.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(padding={self.padding})'


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack an image and its class label for a classifier.

    Required keys: ``img`` (H, W, C) or (H, W).

    Optional keys: ``gt_label`` (int), and the ``meta_keys``.

    Returns ``dict(inputs, data_samples)``: ``inputs`` is the (C, H, W) image tensor in
    its own dtype (uint8 from ``LoadImageFromFile``; the data preprocessor normalises it),
    ``data_samples`` a :class:`~mmengine.structures.BaseDataElement` with ``gt_label``
    (LongTensor of shape (1,), when the results have one) and, as metainfo, the
    ``meta_keys`` found in the results.

    Args:
        meta_keys (Sequence[str]): Keys copied into the data sample's metainfo when
            present. Defaults to image / instance ids, paths, shapes, boxes and groups.
    """

    DEFAULT_META_KEYS = ('img_id', 'ann_id', 'sample_idx', 'img_path', 'ori_shape',
                         'img_shape', 'scale_factor', 'bbox', 'crop_bbox', 'group_id',
                         'group_name')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        if isinstance(meta_keys, str) or not all(isinstance(k, str) for k in meta_keys):
            raise TypeError(f'PackClsInputs: meta_keys must be a sequence of str, but got '
                            f'{meta_keys!r}')
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack ``results`` into ``dict(inputs=(C, H, W) tensor, data_samples=...)``."""
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(
            metainfo={k: results[k] for k in self.meta_keys if k in results})
        if results.get('gt_label') is not None:
            sample.gt_label = torch.as_tensor([int(results['gt_label'])], dtype=torch.long)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
