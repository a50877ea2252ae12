"""Cross-source mixing: paste objects of another source into an image, with the region
where those classes are now annotated.

Sources that each have their own look (a person set and an animal set) teach a model
"images that look like A never hold B's classes" as soon as one head or one classifier
sees both. ``CrossSourcePaste`` pastes the labelled objects of an image drawn from
*another* source (their pixels, cut by their ``segmentation`` polygons) into the image at
hand, so every class is seen on every look. The pasted objects keep their own source's
label mask: the target image is annotated for the target source's classes everywhere,
and for the partner source's classes only inside the pasted boxes (grown by
``margin``). Those regions travel with the sample as ``label_regions`` (rows
``[unified class, x1, y1, x2, y2]`` in the loaded image's pixels); the masked union
mode of :class:`~mtl_plugin.models.MultiHeadDetector` blocks the gradient of a class
outside its annotated regions, so the target image's own unlabelled objects of the
partner's classes are never learnt as background.

Place it right after ``LoadAnnotations`` in a source's pipeline of a
``MultiSourceDataset(label_space='unified')``; only ``Resize``, ``RandomFlip``,
photometric transforms and the packer may follow it (the regions are mapped to the
network input with the sample's ``scale_factor`` and ``flip``, see
:func:`mtl_plugin.models.detectors.masked_loss.regions_in_input`). The dataset binds the
partner sources when it is built (:func:`bind_cross_source_paste`).
"""
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.registry import TRANSFORMS

from ..validation import check_finite, check_int

__all__ = ['CrossSourcePaste', 'bind_cross_source_paste', 'SAFE_AFTER_PASTE']

# transforms that may follow the paste: geometry the sample's metainfo records
# (scale_factor, flip) or none at all
SAFE_AFTER_PASTE = ('Resize', 'RandomFlip', 'PackDetInputs', 'PhotoMetricDistortion',
                    'Pad', 'YOLOXHSVRandomAug', 'ColorTransform', 'Brightness', 'Contrast',
                    'Normalize', 'ImageToTensor')
_MAX_EMPTY_DRAWS = 50


@TRANSFORMS.register_module()
class CrossSourcePaste(BaseTransform):
    """Paste the labelled objects of another source's image into this one.

    Args:
        prob (float): Probability of pasting into a sample. Defaults to 0.5.
        max_objects (int): Most objects pasted from the partner image. Defaults to 3.
        margin (float): Each pasted box, grown by this fraction of its size on every
            side, is where the partner's classes count as annotated. Defaults to 0.1.
        max_covered (float): A target box whose area the pasted pixels cover more than
            this fraction of is dropped (occluded). Defaults to 0.7.

    Raises:
        ValueError: ``prob`` outside [0, 1], ``max_objects`` < 1, a negative
            ``margin`` or ``max_covered`` outside (0, 1].
        TypeError: A setting that is not a number.
    """

    def __init__(self, prob: float = 0.5, max_objects: int = 3, margin: float = 0.1,
                 max_covered: float = 0.7) -> None:
        owner = 'CrossSourcePaste'
        self.prob = check_finite(prob, 'prob', owner)
        self.max_objects = check_int(max_objects, 'max_objects', owner, minimum=1)
        self.margin = check_finite(margin, 'margin', owner)
        self.max_covered = check_finite(max_covered, 'max_covered', owner, strict=True)
        for what, value in (('prob', self.prob), ('max_covered', self.max_covered)):
            if value > 1:
                raise ValueError(f'{owner}: {what} must be <= 1, but got {value!r}')
        self._partner: Optional[Callable[[str], dict]] = None
        self._classes: Dict[str, np.ndarray] = {}
        self._empty_draws = 0

    def bind(self, partner: Callable[[str], dict], classes: Dict[str, np.ndarray]) -> None:
        """Give the transform its partner sources (called by ``MultiSourceDataset``).

        Args:
            partner (Callable[[str], dict]): Given this sample's group name, the loaded
                results (image, unified GT, instances with ``mask``) of a random image
                of another source.
            classes (dict[str, np.ndarray]): Per group, the unified indices of the
                classes its source annotates.
        """
        self._partner = partner
        self._classes = {k: np.asarray(v, np.int64) for k, v in classes.items()}

    def transform(self, results: dict) -> dict:
        """Paste into ``results`` with probability ``prob``; always set
        ``label_regions`` ((K, 5) float32, K = 0 when nothing was pasted)."""
        if self._partner is None:
            raise RuntimeError('CrossSourcePaste runs only inside a MultiSourceDataset '
                               "(label_space='unified'), which binds the partner sources; "
                               'put it in a source pipeline of one')
        results['label_regions'] = np.zeros((0, 5), np.float32)
        if np.random.rand() >= self.prob:
            return results
        partner = self._partner(results['group_name'])
        objects = _pasteable(partner)
        if not objects:
            self._empty_draws += 1
            if self._empty_draws >= _MAX_EMPTY_DRAWS:
                raise RuntimeError(
                    f'CrossSourcePaste: {_MAX_EMPTY_DRAWS} partner images in a row had no '
                    'object with a segmentation polygon to cut out; the sources\' '
                    "annotations need 'segmentation' (COCO polygons)")
            return results
        self._empty_draws = 0
        if len(objects) > self.max_objects:
            objects = [objects[i] for i in sorted(np.random.choice(
                len(objects), self.max_objects, replace=False))]
        return self._paste(results, partner, objects)

    def _paste(self, results: dict, partner: dict, objects: List[int]) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        src, scale = _fit(partner['img'], h, w)
        pasted = np.zeros((h, w), bool)
        boxes, labels = [], []
        for i in objects:
            mask = _polygon_mask(partner['instances'][i]['mask'], scale, h, w)
            if not mask.any():
                continue
            pasted |= mask
            ys, xs = np.nonzero(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(int(partner['gt_bboxes_labels'][i]))
        if not boxes:
            return results
        img = img.copy()
        img[pasted] = src[pasted]
        results['img'] = img
        keep = self._visible(results['gt_bboxes'].numpy(), pasted)
        new_boxes = np.asarray(boxes, np.float32)
        results['gt_bboxes'] = HorizontalBoxes(np.concatenate(
            [results['gt_bboxes'].numpy()[keep], new_boxes]).astype(np.float32))
        results['gt_bboxes_labels'] = np.concatenate(
            [results['gt_bboxes_labels'][keep], np.asarray(labels, np.int64)])
        results['gt_ignore_flags'] = np.concatenate(
            [results['gt_ignore_flags'][keep], np.zeros(len(labels), bool)])
        results['label_regions'] = self._regions(new_boxes, partner['group_name'], h, w)
        return results

    def _visible(self, boxes: np.ndarray, pasted: np.ndarray) -> np.ndarray:
        """Keep mask of the target boxes the pasted pixels leave visible enough."""
        keep = np.ones(len(boxes), bool)
        for k, (x1, y1, x2, y2) in enumerate(boxes.round().astype(int)):
            patch = pasted[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)]
            keep[k] = patch.size == 0 or patch.mean() <= self.max_covered
        return keep

    def _regions(self, boxes: np.ndarray, group: str, h: int, w: int) -> np.ndarray:
        """One row ``[class, x1, y1, x2, y2]`` per pasted box and partner class."""
        size = boxes[:, 2:] - boxes[:, :2]
        grown = np.concatenate([boxes[:, :2] - self.margin * size,
                                boxes[:, 2:] + self.margin * size], 1)
        grown = np.clip(grown, 0, [w, h, w, h])
        classes = self._classes[group]
        rows = [[c, *box] for box in grown for c in classes]
        return np.asarray(rows, np.float32).reshape(-1, 5)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, max_objects={self.max_objects}, '
                f'margin={self.margin}, max_covered={self.max_covered})')


def _pasteable(partner: dict) -> List[int]:
    """Indices of the partner's labelled (not ignored) objects with a polygon."""
    flags = partner.get('gt_ignore_flags', np.zeros(len(partner['instances']), bool))
    return [i for i, inst in enumerate(partner['instances'])
            if not flags[i] and isinstance(inst.get('mask'), list) and inst['mask']]


def _fit(img: np.ndarray, h: int, w: int) -> Tuple[np.ndarray, float]:
    """``img`` scaled (aspect kept) to fit in (h, w), padded to (h, w); the scale."""
    scale = min(h / img.shape[0], w / img.shape[1])
    if scale != 1.0:
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)),
                               max(1, round(img.shape[0] * scale))))
    out = np.zeros((h, w) + img.shape[2:], img.dtype)
    out[:img.shape[0], :img.shape[1]] = img[:h, :w]
    return out, scale


def _polygon_mask(polygons: List[List[float]], scale: float, h: int, w: int) -> np.ndarray:
    """(h, w) bool mask of COCO polygons scaled by ``scale``."""
    mask = np.zeros((h, w), np.uint8)
    pts = [(np.asarray(p, np.float32).reshape(-1, 2) * scale).round().astype(np.int32)
           for p in polygons if len(p) >= 6]
    if pts:
        cv2.fillPoly(mask, pts, 1)
    return mask.astype(bool)


def bind_cross_source_paste(dataset) -> None:
    """Bind every ``CrossSourcePaste`` of a ``MultiSourceDataset``'s source pipelines.

    Checks that the dataset is in the unified label space, that there is another source,
    and that only :data:`SAFE_AFTER_PASTE` transforms follow the paste; adds
    ``label_regions`` to the following packer's ``meta_keys``.

    Raises:
        ValueError: Naming the dataset setting or the transform to change.
    """
    found = [(pos, k) for pos, ds in enumerate(dataset.datasets)
             for k, t in enumerate(_transforms(ds)) if isinstance(t, CrossSourcePaste)]
    if not found:
        return
    if dataset.label_space != 'unified':
        raise ValueError("CrossSourcePaste pastes other sources' objects with their unified "
                         "labels: set MultiSourceDataset(label_space='unified'), but got "
                         f'label_space={dataset.label_space!r}')
    if len(dataset.datasets) < 2:
        raise ValueError('CrossSourcePaste needs at least two sources in the '
                         'MultiSourceDataset, but got one')
    classes = {name: dataset.unified_space.lookup(name).numpy()
               for name in dataset.group_names}
    for pos, k in found:
        transforms = _transforms(dataset.datasets[pos])
        _check_after(dataset.group_names[pos], transforms[k + 1:])
        transforms[k].bind(_partner_loader(dataset), classes)


def _check_after(group: str, after: list) -> None:
    for t in after:
        name = type(t).__name__
        if name not in SAFE_AFTER_PASTE:
            raise ValueError(
                f'CrossSourcePaste in source {group!r} is followed by {name}, which moves '
                'pixels in a way the sample does not record; put CrossSourcePaste after it '
                f'or use only {", ".join(SAFE_AFTER_PASTE)} after the paste')
        if name == 'PackDetInputs' and 'label_regions' not in t.meta_keys:
            t.meta_keys = tuple(t.meta_keys) + ('label_regions', )


def _transforms(dataset) -> list:
    pipeline = getattr(dataset, 'pipeline', None)
    return getattr(pipeline, 'transforms', [])


def _partner_loader(dataset) -> Callable[[str], dict]:
    """A function drawing a random image of another source, loaded up to its paste."""

    def load(group: str) -> dict:
        others = [p for p, n in enumerate(dataset.group_names) if n != group]
        pos = others[np.random.randint(len(others))]
        source = dataset.datasets[pos]
        results = source.get_data_info(np.random.randint(len(source)))
        for t in _transforms(source):
            if isinstance(t, CrossSourcePaste):
                break
            results = t(results)
            if type(t).__name__ == 'LoadAnnotations':
                break
        return results

    return load
