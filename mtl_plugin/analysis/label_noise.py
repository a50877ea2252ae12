"""Inject known label noise into a COCO dict (for tests and the data-tool benchmarks)."""
import copy
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['NOISE_KINDS', 'inject_label_noise']

NOISE_KINDS = ('swap_class', 'drop', 'shift_box')


def inject_label_noise(coco: dict, rate: float, kinds: Sequence[str] = NOISE_KINDS,
                       seed: int = 0, shift: float = 0.6,
                       classes: Optional[Sequence[str]] = None) -> Tuple[dict, List[dict]]:
    """Corrupt a fraction of the annotations of a COCO dict (the input is not modified).

    Each chosen annotation gets one kind, drawn uniformly from ``kinds``:

    - ``'swap_class'``: another of the source's classes (skipped for a one-class source);
    - ``'drop'``: the annotation is removed (a missing label);
    - ``'shift_box'``: the box moves by ``shift`` times its width and height (clipped to
      the image), so it no longer covers the object.

    Args:
        coco (dict): COCO dict (``images``, ``annotations``, ``categories``).
        rate (float): Fraction of annotations to corrupt, in [0, 1].
        kinds (Sequence[str]): Kinds to draw from. Defaults to all three.
        seed (int): Seed of the draw; the output is a function of the arguments.
        shift (float): Box shift for ``'shift_box'``, in box sizes. Defaults to 0.6.
        classes (Sequence[str], optional): The classes the source annotates (its
            ``metainfo.classes``, what training reads): swaps stay among these even when
            the file lists more categories (e.g. after merging). Defaults to every
            category of the file.

    Returns:
        tuple[dict, list[dict]]: The noisy copy and one record per corrupted annotation:
        ``ann_id``, ``image_id``, ``kind``, ``category_id`` (original) and, for swaps,
        ``new_category_id``; for shifts ``bbox`` (the original) and ``new_bbox``.
    """
    if not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f'rate must be in [0, 1], but got {rate!r}')
    unknown = [k for k in kinds if k not in NOISE_KINDS]
    if unknown or not kinds:
        raise ValueError(f'kinds must be a non-empty subset of {NOISE_KINDS}, but got '
                         f'{list(kinds)!r}')
    cat_ids = [c['id'] for c in coco['categories'] if classes is None or c['name'] in classes]
    if classes is not None and len(cat_ids) != len(set(classes)):
        names = [c['name'] for c in coco['categories']]
        raise ValueError(f'classes {sorted(set(classes) - set(names))} are not categories of '
                         f'the file (its categories: {names}), but got classes={classes!r}')
    if 'swap_class' in kinds and len(cat_ids) < 2:
        if list(kinds) == ['swap_class']:
            raise ValueError("'swap_class' needs >= 2 categories; give other kinds")
        kinds = [k for k in kinds if k != 'swap_class']  # a one-class file cannot swap
    rng = np.random.default_rng(seed)
    out = copy.deepcopy(coco)
    anns = out['annotations']
    chosen = rng.choice(len(anns), size=int(round(rate * len(anns))), replace=False)
    size = {im['id']: (im['width'], im['height']) for im in out['images']}
    records, dropped = [], set()
    for i in sorted(chosen.tolist()):
        ann = anns[i]
        kind = str(rng.choice(list(kinds)))
        records.append(_corrupt(ann, kind, rng, cat_ids, size[ann['image_id']], shift))
        if kind == 'drop':
            dropped.add(ann['id'])
    out['annotations'] = [a for a in anns if a['id'] not in dropped]
    return out, records


def _corrupt(ann: dict, kind: str, rng: np.random.Generator, cat_ids: List[int],
             image_size: Tuple[int, int], shift: float) -> dict:
    """Apply ``kind`` to ``ann`` in place (``'drop'``: the caller removes it); its record."""
    rec = dict(ann_id=ann['id'], image_id=ann['image_id'], kind=kind,
               category_id=ann['category_id'])
    if kind == 'swap_class':
        ann['category_id'] = int(rng.choice([c for c in cat_ids if c != ann['category_id']]))
        rec['new_category_id'] = ann['category_id']
    elif kind == 'shift_box':
        x, y, w, h = ann['bbox']
        sx, sy = rng.choice([-1, 1], size=2) * shift
        width, height = image_size
        nx = float(np.clip(x + sx * w, 0, max(width - w, 0)))
        ny = float(np.clip(y + sy * h, 0, max(height - h, 0)))
        rec['bbox'], ann['bbox'] = list(ann['bbox']), [round(nx, 2), round(ny, 2), w, h]
        rec['new_bbox'] = ann['bbox']
    return rec
