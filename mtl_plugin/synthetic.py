"""Generated multi-source COCO datasets with partial labels (demo, tests, benchmarks).

Each *source* annotates only its own classes, but its images also contain objects of
the other sources' classes, left unlabelled: the partial-label situation of two
independent datasets (a person set whose images show unlabelled animals, and vice
versa). Each source can have its own look (background colour and texture, object
scale), as real datasets do; a fully labelled test split mixes the looks.

Every object carries 4 keypoints (top, right, bottom, left extreme of its shape), so
the same files serve detection and top-down pose.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .io import atomic_write
from .validation import is_finite_real, is_int

KEYPOINT_NAMES = ('top', 'right', 'bottom', 'left')
SHAPES = ('ellipse', 'triangle', 'square', 'diamond', 'cross', 'ring')
COLOURS = ((220, 40, 40), (30, 140, 240), (50, 50, 210), (30, 220, 230), (200, 50, 200),
           (210, 200, 30))  # BGR


@dataclass
class SourceSpec:
    """One generated source.

    Args:
        name (str): Group name, e.g. ``'person'``.
        classes (Sequence[str]): Classes this source annotates.
        background (tuple[int, int, int]): Mean background colour (BGR) of its look.
        texture (float): Std of the background noise.
        scale (tuple[float, float]): Object size range as a fraction of the image side.
    """
    name: str
    classes: Sequence[str]
    background: Tuple[int, int, int] = (120, 120, 120)
    texture: float = 10.0
    scale: Tuple[float, float] = (0.15, 0.35)


DEFAULT_SOURCES = (
    SourceSpec('person', ('person',), background=(170, 140, 90), texture=6.0,
               scale=(0.18, 0.4)),
    SourceSpec('animal', ('cat', 'bird'), background=(60, 120, 60), texture=22.0,
               scale=(0.12, 0.3)),
)


@dataclass
class _SyntheticConfig:
    """Settings both generators take (see :class:`GeneratorConfig`, whose defaults these
    are, and :class:`ClsGeneratorConfig`)."""
    sources: Sequence[SourceSpec] = field(default_factory=lambda: list(DEFAULT_SOURCES))
    num_train: int = 64
    num_val: int = 16
    img_size: int = 128
    shared_look: bool = False
    seed: int = 0

    def _check(self, counts: Sequence[str], min_img_size: int) -> None:
        """Unique source names, each class in one source, ``counts`` ints >= 0, and
        ``img_size`` an int >= ``min_img_size``."""
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f'source names must be unique and non-empty, got {names}')
        classes = [c for s in self.sources for c in s.classes]
        if len(set(classes)) != len(classes):
            raise ValueError(f'a class may belong to one source only, got {classes}')
        if len(classes) > len(SHAPES):
            raise ValueError(f'at most {len(SHAPES)} classes in all, got {len(classes)}')
        for key in counts:
            value = getattr(self, key)
            if not is_int(value) or value < 0:
                raise ValueError(f'{key} must be an int >= 0, but got {value!r}')
        if not is_int(self.img_size) or self.img_size < min_img_size:
            raise ValueError(f'img_size must be an int >= {min_img_size}, but got '
                             f'{self.img_size!r}')


@dataclass
class GeneratorConfig(_SyntheticConfig):
    """Settings of :func:`generate_multi_source` (give them by keyword).

    Args:
        sources (Sequence[SourceSpec]): The sources. Defaults to person + animal.
        num_train (int): Training images per source. Defaults to 64.
        num_val (int): Validation images per source (partial labels). Defaults to 16.
        img_size (int): Square image side in pixels. Defaults to 128.
        shared_look (bool): Give all sources the first source's look. Defaults to False.
        seed (int): Random seed; the output is a function of the config. Defaults to 0.
        num_test (int): Images of the fully labelled, mixed-look test split.
            Defaults to 32.
        max_own (int): Max labelled objects per image (at least 1). Defaults to 3.
        max_other (int): Max unlabelled objects of other sources' classes. Defaults to 2.
        write_images (bool): Write JPEGs (False: annotations only, e.g. for a 118k-image
            file that tests that nothing reads images). Defaults to True.
    """
    num_test: int = 32
    max_own: int = 3
    max_other: int = 2
    write_images: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` on settings that cannot produce a dataset."""
        self._check(('num_train', 'num_val', 'num_test', 'max_other'), min_img_size=32)
        if not is_int(self.max_own) or self.max_own < 1:
            raise ValueError(f'max_own must be an int >= 1, but got {self.max_own!r}')


def _shape_polygon(shape: str, cx: float, cy: float, w: float, h: float) -> np.ndarray:
    """Outline points (N, 2) of a class shape inside the box centred at (cx, cy)."""
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    unit = {
        'ellipse': np.stack([np.cos(t), np.sin(t)], 1),
        'triangle': np.array([[0, -1], [1, 1], [-1, 1]], float),
        'square': np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float),
        'diamond': np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], float),
        'cross': np.array([[-.3, -1], [.3, -1], [.3, -.3], [1, -.3], [1, .3], [.3, .3],
                           [.3, 1], [-.3, 1], [-.3, .3], [-1, .3], [-1, -.3], [-.3, -.3]]),
        'ring': np.stack([np.cos(t), np.sin(t)], 1),
    }[shape]
    return unit * [w / 2, h / 2] + [cx, cy]


def _keypoints(poly: np.ndarray) -> np.ndarray:
    """Top, right, bottom, left extreme points of an outline, (4, 2)."""
    return poly[[poly[:, 1].argmin(), poly[:, 0].argmax(), poly[:, 1].argmax(),
                 poly[:, 0].argmin()]]


class _Painter:
    """Draws images and their annotations for one split."""

    def __init__(self, cfg: GeneratorConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rng = rng
        classes = [c for s in cfg.sources for c in s.classes]
        self.shape_of = dict(zip(classes, SHAPES))
        self.colour_of = dict(zip(classes, COLOURS))

    def background(self, look: SourceSpec) -> np.ndarray:
        size = self.cfg.img_size
        base = np.array(look.background, np.float32) + self.rng.normal(0, 12, 3)
        grad = np.linspace(-20, 20, size, dtype=np.float32)[:, None, None]
        noise = self.rng.normal(0, look.texture, (size, size, 3)).astype(np.float32)
        return np.clip(base + grad + noise, 0, 255).astype(np.uint8)

    def draw_object(self, img: Optional[np.ndarray], cls: str,
                    look: SourceSpec) -> Tuple[List[float], np.ndarray, np.ndarray]:
        """Paint one object of ``cls`` (if ``img``); its box (xywh), keypoints and
        outline (N, 2), the outline being its COCO ``segmentation`` polygon."""
        size = self.cfg.img_size
        w, h = self.rng.uniform(*look.scale, 2) * size
        cx, cy = self.rng.uniform([w / 2, h / 2], [size - w / 2, size - h / 2])
        poly = _shape_polygon(self.shape_of[cls], cx, cy, w, h)
        if img is not None:
            colour = tuple(int(c) for c in np.clip(
                np.array(self.colour_of[cls]) + self.rng.normal(0, 15, 3), 0, 255))
            pts = poly.round().astype(np.int32)
            if self.shape_of[cls] == 'ring':
                cv2.polylines(img, [pts], True, colour, max(2, int(min(w, h) / 6)))
            else:
                cv2.fillPoly(img, [pts], colour)
        x0, y0 = poly.min(0)
        x1, y1 = poly.max(0)
        return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], _keypoints(poly), poly


def _categories(classes: Sequence[str]) -> List[dict]:
    return [dict(id=i + 1, name=c, supercategory=c, keypoints=list(KEYPOINT_NAMES),
                 skeleton=[[1, 2], [2, 3], [3, 4], [4, 1]]) for i, c in enumerate(classes)]


def _atomic_json(obj: dict, path: str) -> None:
    atomic_write(path, json.dumps(obj))


def _make_split(cfg: GeneratorConfig, painter: _Painter, out_dir: str, split: str,
                look_sources: List[SourceSpec], labelled: Sequence[str], n: int,
                image_dir: str) -> Tuple[dict, dict]:
    """Generate ``n`` images; objects of ``labelled`` classes are annotated.

    Returns:
        tuple[dict, dict]: The partially labelled COCO dict (``labelled`` classes only)
        and the fully labelled one (all classes; objects the first leaves out carry
        ``"hidden": true``), the ground truth of the missing labels.
    """
    all_classes = [c for s in cfg.sources for c in s.classes]
    cat_id = {c: i + 1 for i, c in enumerate(labelled)}
    full_cat_id = {c: i + 1 for i, c in enumerate(all_classes)}
    images, anns, full_anns = [], [], []
    for i in range(n):
        look = look_sources[i % len(look_sources)]
        own = [c for c in labelled if c in look.classes] or list(labelled)
        others = [c for c in all_classes if c not in own]
        objs = list(painter.rng.choice(own, painter.rng.integers(1, cfg.max_own + 1)))
        if others and cfg.max_other:
            objs += list(painter.rng.choice(others, painter.rng.integers(0, cfg.max_other + 1)))
        painter.rng.shuffle(objs)
        paint_look = cfg.sources[0] if cfg.shared_look else look
        img = painter.background(paint_look) if cfg.write_images else None
        file_name = f'{split}_{i:06d}.jpg'
        for cls in objs:
            bbox, kpts, poly = painter.draw_object(img, str(cls), paint_look)
            kp = np.concatenate([kpts, np.full((4, 1), 2.0)], 1).reshape(-1)
            ann = dict(image_id=i + 1, bbox=[round(v, 2) for v in bbox],
                       segmentation=[[round(float(v), 2) for v in poly.reshape(-1)]],
                       area=round(bbox[2] * bbox[3], 2), iscrowd=0, num_keypoints=4,
                       keypoints=[round(float(v), 2) for v in kp])
            full_anns.append(dict(ann, id=len(full_anns) + 1, category_id=full_cat_id[str(cls)],
                                  hidden=bool(cls not in cat_id)))
            if cls in cat_id:
                anns.append(dict(ann, id=len(anns) + 1, category_id=cat_id[cls]))
        images.append(dict(id=i + 1, file_name=file_name, width=cfg.img_size,
                           height=cfg.img_size, source=look.name))
        if img is not None:
            os.makedirs(osp.join(out_dir, image_dir), exist_ok=True)
            cv2.imwrite(osp.join(out_dir, image_dir, file_name), img)
    return (dict(images=images, annotations=anns, categories=_categories(labelled)),
            dict(images=images, annotations=full_anns, categories=_categories(all_classes)))


def generate_multi_source(out_dir: str, cfg: Optional[GeneratorConfig] = None) -> Dict[str, str]:
    """Write a multi-source COCO dataset under ``out_dir``.

    Layout::

        out_dir/images/<source>/{train,val}_*.jpg   out_dir/images/test/test_*.jpg
        out_dir/annotations/<source>_{train,val}.json   (that source's classes only)
        out_dir/annotations/<source>_{train,val}_full.json   (the same images with every
            object of every class; those the partial file leaves out have "hidden": true)
        out_dir/annotations/test_full.json              (all classes, mixed looks)
        out_dir/meta.json

    Args:
        out_dir (str): Output folder (created).
        cfg (GeneratorConfig, optional): Settings. Defaults to ``GeneratorConfig()``.

    Returns:
        dict[str, str]: Split key (``'person_train'``, ``'test_full'``, ...) -> JSON path.
    """
    cfg = cfg or GeneratorConfig()
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    painter = _Painter(cfg, rng)
    files = {}
    for src in cfg.sources:
        for split, n in (('train', cfg.num_train), ('val', cfg.num_val)):
            coco, full = _make_split(cfg, painter, out_dir, split, [src], src.classes, n,
                                     osp.join('images', src.name))
            for key, obj in ((f'{src.name}_{split}', coco), (f'{src.name}_{split}_full', full)):
                files[key] = osp.join(out_dir, 'annotations', f'{key}.json')
                _atomic_json(obj, files[key])
    if cfg.num_test:
        all_classes = [c for s in cfg.sources for c in s.classes]
        coco, _ = _make_split(cfg, painter, out_dir, 'test', list(cfg.sources), all_classes,
                              cfg.num_test, osp.join('images', 'test'))
        files['test_full'] = osp.join(out_dir, 'annotations', 'test_full.json')
        _atomic_json(coco, files['test_full'])
    meta = dict(seed=cfg.seed, img_size=cfg.img_size, shared_look=cfg.shared_look,
                sources={s.name: list(s.classes) for s in cfg.sources},
                keypoints=list(KEYPOINT_NAMES),
                files={k: osp.relpath(v, out_dir) for k, v in files.items()})
    _atomic_json(meta, osp.join(out_dir, 'meta.json'))
    return files


# ---------------------------------------------------------------------- classification
# the detection sources' looks, with at least two classes per source (a fine-grained
# problem in each group): person (person, rider) and animal (cat, bird, dog)
DEFAULT_CLS_SOURCES = (
    SourceSpec('person', ('person', 'rider'), background=DEFAULT_SOURCES[0].background,
               texture=DEFAULT_SOURCES[0].texture, scale=DEFAULT_SOURCES[0].scale),
    SourceSpec('animal', ('cat', 'bird', 'dog'), background=DEFAULT_SOURCES[1].background,
               texture=DEFAULT_SOURCES[1].texture, scale=DEFAULT_SOURCES[1].scale),
)


@dataclass
class ClsGeneratorConfig(_SyntheticConfig):
    """Settings of :func:`generate_classification` (give them by keyword).

    Args:
        sources (Sequence[SourceSpec]): The sources (groups). Defaults to
            ``DEFAULT_CLS_SOURCES``: person (person, rider) and animal (cat, bird, dog),
            in the looks of the detection sources.
        num_train (int): Training images per class. Defaults to 32.
        num_val (int): Validation images per class. Defaults to 8.
        img_size (int): Square image side in pixels. Defaults to 64.
        shared_look (bool): Give all sources the first source's look. Defaults to False.
        seed (int): Random seed; the output is a function of the config. Defaults to 0.
        zoom (float): Factor on each source's object ``scale`` range (single objects
            fill more of the image than in detection scenes); the range is capped at
            0.95 of the image side. Defaults to 2.0.
    """
    zoom: float = 2.0
    # the shared settings whose defaults differ (they keep their place in the fields)
    sources: Sequence[SourceSpec] = field(default_factory=lambda: list(DEFAULT_CLS_SOURCES))
    num_train: int = 32
    num_val: int = 8
    img_size: int = 64

    def validate(self) -> None:
        """Raise ``ValueError`` on settings that cannot produce a dataset."""
        self._check(('num_train', 'num_val'), min_img_size=16)
        if not is_finite_real(self.zoom) or self.zoom <= 0:
            raise ValueError(f'zoom must be a positive finite number, but got {self.zoom!r}')


def _zoomed(spec: SourceSpec, zoom: float) -> SourceSpec:
    """``spec`` with its object scale range multiplied by ``zoom`` (capped at 0.95)."""
    low, high = (min(s * zoom, 0.95) for s in spec.scale)
    return SourceSpec(spec.name, tuple(spec.classes), tuple(spec.background), spec.texture,
                      (low, high))


def generate_classification(out_dir: str,
                            cfg: Optional[ClsGeneratorConfig] = None) -> Dict[str, str]:
    """Write a multi-source image classification dataset under ``out_dir``.

    Every image shows one object of one of its source's classes, drawn in that source's
    look (background colour, texture, object scale) by the detection generator's painter.
    Each source keeps its own label space: ``gt_label`` indexes that source's classes.

    Layout (MMEngine ``BaseDataset`` annotation format)::

        out_dir/images/cls/<source>/{train,val}_<label>_<i>.jpg
        out_dir/annotations/cls_<source>_{train,val}.json
            {"metainfo": {"classes": [...]},
             "data_list": [{"img_path": "images/cls/<source>/....jpg", "gt_label": k}]}

    ``img_path`` is relative to ``out_dir`` (use ``data_root=out_dir``). Samples are
    listed round-robin over the classes (``num_train`` / ``num_val`` per class).

    Args:
        out_dir (str): Output folder (created).
        cfg (ClsGeneratorConfig, optional): Settings. Defaults to ``ClsGeneratorConfig()``.

    Returns:
        dict[str, str]: Split key (``'cls_person_train'``, ...) -> JSON path.
    """
    cfg = cfg or ClsGeneratorConfig()
    cfg.validate()
    looks = [_zoomed(s, cfg.zoom) for s in cfg.sources]
    painter = _Painter(GeneratorConfig(sources=looks, img_size=cfg.img_size, seed=cfg.seed),
                       np.random.default_rng(cfg.seed))
    files = {}
    for src_index, src in enumerate(cfg.sources):
        look = looks[0] if cfg.shared_look else looks[src_index]
        image_dir = osp.join('images', 'cls', src.name)
        os.makedirs(osp.join(out_dir, image_dir), exist_ok=True)
        for split, n in (('train', cfg.num_train), ('val', cfg.num_val)):
            data_list = []
            for i in range(n):
                for label, cls in enumerate(src.classes):
                    img = painter.background(look)
                    painter.draw_object(img, cls, look)
                    rel = osp.join(image_dir, f'{split}_{label:02d}_{i:05d}.jpg')
                    cv2.imwrite(osp.join(out_dir, rel), img)
                    data_list.append(dict(img_path=rel, gt_label=label))
            key = f'cls_{src.name}_{split}'
            files[key] = osp.join(out_dir, 'annotations', f'{key}.json')
            _atomic_json(dict(metainfo=dict(classes=list(src.classes)), data_list=data_list),
                         files[key])
    return files
