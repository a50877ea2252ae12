"""MultiHeadDetector's label spaces at mmdet's doors (fast, no Runner): the stock
``DetLocalVisualizer`` draws the right class names and colours, unified GT trains the right
head labels, partial datasets leave uncovered heads alone, plain test sets map by name."""
import copy
import json
import os.path as osp
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mtl_plugin.datasets import MultiSourceDataset
from mtl_plugin.labels import LabelSpace
from tiny_models import GROUP_CLASSES, TEST_CFG, batch, build_detector

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                  'img_shape', 'scale_factor'))]
PERSON_ONLY = LabelSpace(dict(person=('person', ))).to_dict()


def _dataset(root, **kw):
    init_default_scope('mmdet')
    return MultiSourceDataset(datasets=[
        dict(type='CocoDataset', group_name=g, data_root=root,
             ann_file=f'annotations/{g}_val.json', data_prefix=dict(img=f'images/{g}/'),
             metainfo=dict(classes=c), test_mode=True) for g, c in GROUP_CLASSES.items()],
        pipeline=PIPELINE, **kw)


def _gt_names(root, sample):
    """Category names of a sample's annotations, from its annotation file (file order)."""
    group = sample.group_name
    ann = json.load(open(osp.join(root, f'annotations/{group}_val.json')))
    names = {c['id']: c['name'] for c in ann['categories']}
    return [names[a['category_id']] for a in ann['annotations']
            if a['image_id'] == sample.img_id]


class _Spy:
    """Records what the stock visualizer draws: texts, and box colours per call."""

    def __init__(self, visualizer):
        self.texts, self.box_colours = [], []
        self._texts, self._boxes = visualizer.draw_texts, visualizer.draw_bboxes
        visualizer.draw_texts = self.draw_texts
        visualizer.draw_bboxes = self.draw_bboxes

    def draw_texts(self, texts, *args, **kwargs):
        self.texts.append(texts)
        return self._texts(texts, *args, **kwargs)

    def draw_bboxes(self, bboxes, *args, edge_colors=None, **kwargs):
        self.box_colours.extend(tuple(int(v) for v in c) for c in edge_colors)
        return self._boxes(bboxes, *args, edge_colors=edge_colors, **kwargs)


def _draw(meta, sample, **kw):
    from mmdet.visualization import DetLocalVisualizer
    visualizer = DetLocalVisualizer(name=f'vis{id(sample)}')
    visualizer.dataset_meta = meta
    spy = _Spy(visualizer)
    image = np.zeros((*sample.ori_shape, 3), dtype=np.uint8)
    visualizer.add_datasample('x', image, sample, show=False, **kw)
    return spy


def test_unified_palette_gives_every_class_its_own_colour(synthetic_root):
    meta = _dataset(synthetic_root).metainfo
    assert meta['classes'] == ('person', 'cat', 'bird')
    # stock CocoDataset sources keep COCO's palette: cat's own colour is person's
    assert len(set(map(tuple, meta['palette']))) == 3
    assert tuple(meta['palette'][0]) == (220, 20, 60)  # person keeps its own colour
    # lazily built (as init_detector / DetInferencer do): the same metainfo, no file read
    lazy = _dataset(osp.join(synthetic_root, 'absent'), lazy_init=True)
    lazy_meta = lazy.metainfo
    for key in ('group_ann_files', ):  # the one thing that names the (absent) files
        lazy_meta.pop(key, None), meta.pop(key, None)
    assert lazy_meta == meta


@torch.no_grad()
def test_stock_visualizer_draws_gt_and_predictions_by_class_name(synthetic_root):
    """The test loop's outputs (GT and predictions) in the dataset's classes: 'cat' / 'bird'
    on animal images (local label 0 drew 'person' before), distinct colour per class."""
    dataset = _dataset(synthetic_root)
    meta = dataset.metainfo
    model = build_detector().eval()
    data = pseudo_collate([dataset[0], dataset[len(dataset) - 1]])  # person, animal
    outputs = model.test_step(data)
    colour_of = {}
    for sample in outputs:
        assert sample.gt_label_space == 'unified'
        want = _gt_names(synthetic_root, sample)
        assert want and set(want) <= set(GROUP_CLASSES[sample.group_name])
        spy = _draw(meta, sample, draw_pred=False)
        assert spy.texts == want  # one text per GT box, in order
        for name, colour in zip(want, spy.box_colours):
            assert colour == tuple(meta['palette'][meta['classes'].index(name)])
            assert colour_of.setdefault(name, colour) == colour
        spy = _draw(meta, sample, draw_gt=False, pred_score_thr=0.0)
        names = [t.split(':')[0] for t in spy.texts]
        pred = sample.pred_instances
        assert names == [meta['classes'][i] for i in pred.labels.tolist()]
        assert {meta['classes'][i] for i in pred.labels.tolist()} == {'person', 'cat', 'bird'}
    assert len(set(colour_of.values())) == len(colour_of) >= 2


def test_unified_gt_trains_each_head_on_its_own_labels(synthetic_root):
    """label_space='unified' samples (labels 1, 2 for cat, bird) reach the animal head as
    0, 1: the same head labels as label_space='group'."""
    group, unified = _dataset(synthetic_root), _dataset(synthetic_root, label_space='unified')
    model = build_detector()
    last = len(group) - 1
    local, shifted = group[last]['data_samples'], unified[last]['data_samples']
    assert shifted.gt_label_space == 'unified' and local.gt_label_space == 'group'
    assert torch.equal(shifted.gt_instances.labels, local.gt_instances.labels + 1)
    model.meet([shifted])
    head_labels = model._to_head_labels('animal', shifted).gt_instances.labels
    assert torch.equal(head_labels, local.gt_instances.labels)


def _sgd(model):
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9,
                                        weight_decay=1e-2))


def _with_space(data, space):
    for s in data['data_samples']:
        s.set_metainfo(dict(groups=dict(person=0), label_space=space))
    return data


def test_partial_dataset_keeps_the_uncovered_head_and_its_classes():
    """Stage 1 (person data only): the animal head keeps its head_classes and its
    parameters, bit for bit, through SGD steps with momentum and weight decay."""
    model = build_detector(head_classes=dict(animal=('cat', 'bird'))).train()
    wrapper = _sgd(model)
    before = {k: v.clone() for k, v in model.heads['animal'].state_dict().items()}
    person = copy.deepcopy(model.heads['person'].state_dict())
    for step in range(2):
        model.train_step(_with_space(batch(['person', 'person'], seed=step), PERSON_ONLY),
                         wrapper)
    after = model.heads['animal'].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(person[k], v) for k, v in model.heads['person'].state_dict()
                   .items())
    assert model.label_space.unified_classes == ('person', 'cat', 'bird')
    assert model.head_classes()['animal'] == ('cat', 'bird')


def test_a_head_without_class_names_fails_before_the_first_step_naming_the_fix():
    model = build_detector().train()
    before = copy.deepcopy(model.state_dict())
    fix = r'model\.head_classes=dict\(animal=\[\.\.\.\]\)'
    with pytest.raises(ValueError, match=r"heads \['animal'\] have no class names.*" + fix):
        model.train_step(_with_space(batch(['person']), PERSON_ONLY), _sgd(model))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()
               if k != '_extra_state')  # no update; only what it met is recorded
    # a plain test set (no groups, no label space) on a model that knows no classes
    model = build_detector().eval()
    data = batch(['person'])
    with pytest.raises(ValueError, match=r'head_classes=dict\(person=\[\.\.\.\], animal='):
        model.test_step(data)


def _plain(data):
    """The samples as a plain (non-MultiSource) test set gives them: no group keys."""
    for s in data['data_samples']:
        for key in ('group_name', 'group_id'):
            s._metainfo_fields.discard(key)
            delattr(s, key)
    return data


@torch.no_grad()
def test_plain_test_set_in_another_order_maps_by_name_with_output_classes():
    meta_space = LabelSpace(GROUP_CLASSES).to_dict()
    default = build_detector().eval()
    default.adopt(dict(person=0, animal=1), meta_space)
    order = ('cat', 'person', 'bird')
    mapped = build_detector(test_cfg=dict(TEST_CFG, output_classes=list(order))).eval()
    mapped.load_state_dict(default.state_dict())  # weights and label spaces (extra state)
    base = default.test_step(_plain(batch(['person', 'animal'], seed=5)))
    other = mapped.test_step(_plain(batch(['person', 'animal'], seed=5)))
    for a, b in zip(base, other):
        names_a = [default.label_space.unified_classes[i] for i in a.pred_instances.labels]
        names_b = [order[i] for i in b.pred_instances.labels]
        assert names_a == names_b and torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
    # person (0 -> 1) and cat (1 -> 0) predictions moved: a real permutation was applied
    assert {0, 1} <= set(torch.cat([b.pred_instances.labels for b in other]).tolist())
    with pytest.raises(ValueError, match=r"output_classes names classes \['dog'\]"):
        bad = build_detector(test_cfg=dict(TEST_CFG, output_classes=['dog', 'cat'])).eval()
        bad.adopt(dict(person=0, animal=1), meta_space)
        bad.test_step(_plain(batch(['person'])))
    with pytest.raises(TypeError, match='output_classes must be a non-empty list'):
        build_detector(test_cfg=dict(TEST_CFG, output_classes='cat'))


@torch.no_grad()
def test_test_cfg_heads_runs_only_the_chosen_heads():
    space = LabelSpace(GROUP_CLASSES).to_dict()
    both = build_detector().eval()
    both.adopt(dict(person=0, animal=1), space)
    animal = build_detector(test_cfg=dict(TEST_CFG, heads=['animal'])).eval()
    animal.load_state_dict(both.state_dict())
    with mock.patch.object(animal.heads['person'], 'predict',
                           side_effect=AssertionError('person head ran')):
        only = animal.test_step(batch(['person', 'animal'], seed=2))
    full = both.test_step(batch(['person', 'animal'], seed=2))
    for a, f in zip(only, full):
        keep = f.pred_instances.labels > 0  # the animal head's part of the merged output
        assert torch.equal(a.pred_instances.bboxes, f.pred_instances.bboxes[keep])
        assert torch.equal(a.pred_instances.labels, f.pred_instances.labels[keep])
    with pytest.raises(KeyError, match=r"test_cfg.heads must name heads of the model"):
        build_detector(test_cfg=dict(TEST_CFG, heads=['dog']))


def test_browse_dataset_view_of_a_unified_dataset_draws_class_names(synthetic_root):
    """What mmdet's browse_dataset.py draws (the dataset's own samples, its metainfo) is
    right with label_space='unified': 'cat' / 'bird' on animal images."""
    dataset = _dataset(synthetic_root, label_space='unified')
    meta = dataset.metainfo
    for idx in (0, len(dataset) - 1):
        sample = dataset[idx]['data_samples']
        sample.gt_instances.bboxes = sample.gt_instances.bboxes.tensor  # as browse_dataset
        spy = _draw(meta, sample, draw_pred=False)
        assert spy.texts == _gt_names(synthetic_root, sample)
        assert spy.box_colours == [tuple(meta['palette'][meta['classes'].index(n)])
                                   for n in spy.texts]
