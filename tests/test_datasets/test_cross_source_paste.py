"""CrossSourcePaste: pixels, labels and label regions of a pasted sample, the loss mask
the regions open, and the errors before the first iteration."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS, init_default_scope

import mtl_plugin  # noqa: F401
from mtl_plugin.datasets.cross_source import CrossSourcePaste
from mtl_plugin.models.detectors.masked_loss import (_level_mask, masked_dense_loss,
                                                     regions_in_input)

SOURCES = dict(person=('person', ), animal=('cat', 'bird'))


def _pipeline(after=('Resize', 'RandomFlip'), flip_prob=0.0, **paste):
    extra = dict(Resize=dict(type='Resize', scale=(128, 128), keep_ratio=True),
                 RandomFlip=dict(type='RandomFlip', prob=flip_prob),
                 RandomCrop=dict(type='RandomCrop', crop_size=(64, 64)))
    return [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='CrossSourcePaste', **dict(dict(prob=1.0), **paste)),
            *[extra[t] for t in after], dict(type='PackDetInputs')]


def _dataset(root, label_space='unified', pipeline=None):
    init_default_scope('mmdet')
    return DATASETS.build(dict(type='MultiSourceDataset', label_space=label_space, datasets=[
        dict(type='CocoDataset', group_name=n, data_root=root,
             ann_file=f'annotations/{n}_train.json', data_prefix=dict(img=f'images/{n}/'),
             metainfo=dict(classes=c), pipeline=pipeline or _pipeline())
        for n, c in SOURCES.items()]))


def _raw(root, source, index):
    with open(osp.join(root, f'annotations/{source}_train.json')) as f:
        coco = json.load(f)
    im = coco['images'][index]
    anns = [a for a in coco['annotations'] if a['image_id'] == im['id']]
    return cv2.imread(osp.join(root, f'images/{source}', im['file_name'])), anns


def test_paste_brings_the_partner_objects_with_their_labels_and_regions(synthetic_root,
                                                                        monkeypatch):
    ds = _dataset(synthetic_root, pipeline=_pipeline(max_objects=5, margin=0.0))
    partner_index = 3  # the partner image the transform draws: animal image 3
    monkeypatch.setattr(np.random, 'randint', lambda n, *a, **k: 0 if n == 1 else
                        partner_index)
    monkeypatch.setattr(np.random, 'rand', lambda *a: 0.0)  # always paste
    sample = ds[0]['data_samples']  # person image 0
    target, own = _raw(synthetic_root, 'person', 0)
    partner, objs = _raw(synthetic_root, 'animal', partner_index)
    # the pasted objects are the partner's, in the unified classes (cat 1, bird 2)
    cat_ids = {1: 1, 2: 2}  # the animal file's category ids -> unified labels
    n_own = len(sample.gt_instances.labels) - len(objs)
    assert sample.gt_instances.labels[n_own:].tolist() == [cat_ids[a['category_id']]
                                                            for a in objs]
    assert set(sample.gt_instances.labels[:n_own].tolist()) <= {0}
    # pixels: inside each pasted polygon the image is the partner's
    img = ds.datasets[0][0]['inputs'].permute(1, 2, 0).numpy()  # same draws, same paste
    for a in objs:
        mask = np.zeros(img.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.asarray(a['segmentation'][0]).reshape(-1, 2).round()
                            .astype(np.int32)], 1)
        inner = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
        assert np.array_equal(img[inner], partner[inner])
        assert not np.array_equal(target[inner], partner[inner])
    # regions: every pasted box once per partner class, exactly the pasted box (margin 0)
    regions = np.asarray(sample.label_regions)
    boxes = sample.gt_instances.bboxes.tensor[n_own:].numpy()
    assert regions.shape == (2 * len(objs), 5)
    assert regions[:, 0].tolist() == [1.0, 2.0] * len(objs)
    np.testing.assert_array_equal(regions[::2, 1:], boxes)
    np.testing.assert_array_equal(regions[1::2, 1:], boxes)


def test_regions_follow_resize_and_flip_exactly():
    meta = dict(label_regions=np.array([[1, 10, 20, 30, 60]], np.float32),
                scale_factor=(2.0, 0.5), img_shape=(50, 100), flip=True,
                flip_direction='horizontal')
    np.testing.assert_array_equal(regions_in_input(meta).numpy(), [[1, 40, 10, 80, 30]])
    meta.update(flip_direction='diagonal')
    np.testing.assert_array_equal(regions_in_input(meta).numpy(), [[1, 40, 20, 80, 40]])
    table = torch.tensor([-1, 0])  # unified class 1 -> head class 0; class 0 not predicted
    np.testing.assert_array_equal(regions_in_input(meta, table).numpy(), [[0, 40, 20, 80, 40]])
    assert regions_in_input(dict(meta, label_regions=np.zeros((0, 5)))).shape == (0, 5)


def test_level_mask_opens_exactly_the_cells_inside_a_region():
    annotated = torch.tensor([[True, False]])
    regions = [torch.tensor([[1, 16.0, 0.0, 40.0, 17.0]])]
    mask = _level_mask(annotated, regions, (3, 4), (8.0, 8.0), 0.0)  # centres 0, 8, 16, 24
    assert mask[0, 0].all()
    expected = torch.zeros(3, 4, dtype=torch.bool)
    expected[0:3, 2:4] = True  # x in {16, 24} < 40; y in {0, 8, 16} < 17
    assert torch.equal(mask[0, 1], expected)


def test_masked_loss_gives_gradient_only_where_a_class_is_annotated():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    init_default_scope('mmdet')
    head = MODELS.build(dict(
        type='RetinaHead', num_classes=2, in_channels=8, feat_channels=8, stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                              ratios=[1.0], strides=[8]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss'),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                     min_pos_iou=0, ignore_iof_thr=-1),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                       debug=False)))
    scores = torch.randn(1, 2, 4, 4, requires_grad=True)
    deltas = torch.randn(1, 4, 4, 4, requires_grad=True)
    head.forward = lambda x: ([scores], [deltas])
    sample = DetDataSample(metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32),
                                         batch_input_shape=(32, 32)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0., 14., 14.]]),
                                       labels=torch.tensor([0]))
    regions = [torch.tensor([[1, 15.0, 15.0, 32.0, 32.0]])]  # class 1: cells x, y >= 16
    losses, _ = masked_dense_loss(head, torch.tensor([[True, False]]), (torch.zeros(1, 8, 4, 4), ), [sample],
                                  regions=regions)
    sum(v if torch.is_tensor(v) else sum(v) for v in losses.values()).backward()
    grad = scores.grad[0]
    assert (grad[0] != 0).all()  # class 0: annotated on the whole image
    assert (grad[1, :2, :] == 0).all() and (grad[1, :, :2] == 0).all()
    assert (grad[1, 2:, 2:] != 0).all()  # class 1: only inside its region


def test_paste_needs_the_unified_label_space(synthetic_root):
    with pytest.raises(ValueError, match=r"label_space='unified'"):
        len(_dataset(synthetic_root, label_space='group'))


def test_a_transform_moving_pixels_after_the_paste_is_refused(synthetic_root):
    with pytest.raises(ValueError, match='followed by RandomCrop'):
        len(_dataset(synthetic_root, pipeline=_pipeline(after=('RandomCrop', ))))


@pytest.mark.parametrize('kwargs, match', [
    (dict(prob=1.5), 'prob must be <= 1'), (dict(max_objects=0), 'max_objects must be an int'),
    (dict(margin=-1), 'margin must be'), (dict(max_covered=0), 'max_covered must be')])
def test_bad_settings_name_the_culprit(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CrossSourcePaste(**kwargs)


def test_outside_a_multi_source_dataset_the_paste_says_where_it_belongs():
    with pytest.raises(RuntimeError, match='inside a MultiSourceDataset'):
        CrossSourcePaste()(dict(img=np.zeros((8, 8, 3), np.uint8), group_name='person'))
