import copy
import json
import os.path as osp
from unittest import mock

import mmcv
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, MODELS, TRANSFORMS, init_default_scope

from mtl_plugin.datasets import MultiSourceDataset

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='GroupProbe'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_shape', 'ori_shape', 'scale_factor',
                                          'probe')),
]


@TRANSFORMS.register_module(force=True)
class GroupProbe:
    """Test transform: proves transforms see the group (copied into a meta key)."""

    def __call__(self, results):
        results['probe'] = (results['group_id'], results['group_name'])
        return results


def source(root, name, classes, split='train', **kw):
    return dict(type='CocoDataset', group_name=name, data_root=root,
                ann_file=f'annotations/{name}_{split}.json',
                data_prefix=dict(img=f'images/{name}/'), metainfo=dict(classes=classes),
                pipeline=copy.deepcopy(PIPELINE), **kw)


@pytest.fixture
def sources(synthetic_root):
    init_default_scope('mmdet')
    return [source(synthetic_root, 'person', ('person', )),
            source(synthetic_root, 'animal', ('cat', 'bird'), group_id=7)]


def test_group_ids_match_a_full_pass(sources):
    ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=sources))
    assert ds.group_ids.dtype == np.int64
    assert ds.group_ids.tolist() == [0] * 16 + [7] * 16
    seen = []
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        seen.append(sample.group_id)
        name = {0: 'person', 7: 'animal'}[sample.group_id]
        assert sample.group_name == name
        assert sample.probe == (sample.group_id, name)
    assert seen == ds.group_ids.tolist()


def test_group_ids_and_annotations_read_no_image(sources):
    with mock.patch.object(mmcv, 'imfrombytes', side_effect=AssertionError('image read')), \
            mock.patch('mmengine.fileio.get', side_effect=AssertionError('file read')):
        ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=sources))
        assert len(ds.group_ids) == 32
        info = ds.get_data_info(20)
    assert info['group_name'] == 'animal' and info['group_id'] == 7


def test_each_group_keeps_its_label_space(sources):
    ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=sources))
    assert ds.get_group_metainfo('animal')['classes'] == ('cat', 'bird')
    assert ds.get_group_metainfo(0)['classes'] == ('person', )
    meta = ds.metainfo
    assert meta['group_metainfo']['animal']['classes'] == ('cat', 'bird')
    assert meta['group_name_to_id'] == dict(person=0, animal=7)
    assert meta['label_space'] == 'group'
    assert meta['classes'] == meta['unified_classes'] == ('person', 'cat', 'bird')
    # labels stay local: the animal source's labels are 0 (cat) and 1 (bird)
    labels = torch.cat([ds[i]['data_samples'].gt_instances.labels for i in range(16, 32)])
    assert set(labels.tolist()) == {0, 1}


def test_unified_label_space_shifts_labels(sources, synthetic_root):
    ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=sources, label_space='unified'))
    assert ds.metainfo['classes'] == ('person', 'cat', 'bird')
    animal = json.load(open(osp.join(synthetic_root, 'annotations/animal_train.json')))
    img_id = ds[16]['data_samples'].img_id
    want = sorted(a['category_id'] for a in animal['annotations'] if a['image_id'] == img_id)
    got = sorted(ds[16]['data_samples'].gt_instances.labels.tolist())
    assert got == want  # category ids 1 (cat), 2 (bird) == unified labels 1, 2


def test_every_sample_of_a_mixed_batch_reaches_the_model_with_its_group(sources):
    ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=sources))
    model = MODELS.build(dict(
        type='RetinaNet',
        data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
        neck=None, bbox_head=dict(type='RetinaHead', num_classes=2, in_channels=512,
                                  anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                                        scales_per_octave=1, ratios=[1.0],
                                                        strides=[32]),
                                  bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                                  loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                                  loss_bbox=dict(type='L1Loss'))))
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
    loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=order, collate_fn=pseudo_collate)
    reached = []
    with mock.patch.object(type(model), 'loss', autospec=True,
                           side_effect=lambda self, x, samples: reached.extend(
                               (s.group_id, s.group_name) for s in samples) or {}):
        for batch in loader:
            model.train_step(batch, optim_wrapper=mock.MagicMock())
    assert len({g for g, _ in reached[:8]}) == 2, 'first batch should mix groups'
    names = {0: 'person', 7: 'animal'}
    assert reached == [(int(ds.group_ids[i]), names[int(ds.group_ids[i])]) for i in order]


@pytest.mark.parametrize('mutate, err, match', [
    (lambda s: s[1].update(group_name='person'), ValueError, 'duplicate group name'),
    (lambda s: s[1].update(group_id=0), ValueError, 'duplicate group id'),
    (lambda s: s[1].pop('group_name'), ValueError, r'datasets\[1\] has no group_name'),
    (lambda s: s[0].update(group_id=-2), ValueError, 'group_id must be an int >= 0'),
    (lambda s: s[1].update(ann_file='annotations/empty.json'), ValueError,
     'source "animal" has zero samples'),
])
def test_bad_sources_name_the_culprit(sources, synthetic_root, mutate, err, match):
    with open(osp.join(synthetic_root, 'annotations/empty.json'), 'w') as f:
        json.dump(dict(images=[], annotations=[], categories=[dict(id=1, name='cat')]), f)
    mutate(sources)
    with pytest.raises(err, match=match):
        MultiSourceDataset(sources)


def test_other_bad_inputs(sources):
    with pytest.raises(TypeError, match='non-empty list'):
        MultiSourceDataset([])
    with pytest.raises(ValueError, match='label_space'):
        MultiSourceDataset(sources, label_space='merged')
    ds = MultiSourceDataset(sources)
    with pytest.raises(KeyError, match='known groups'):
        ds.get_group_metainfo('vehicle')
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_pose_pipeline_carries_group(shared_real):
    init_default_scope('mmpose')
    pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                dict(type='TopdownAffine', input_size=(48, 64)), dict(type='PackPoseInputs')]
    ds = DATASETS.build(dict(type='MultiSourceDataset', metainfo='coco', datasets=[
        dict(type='CocoDataset', group_name='coco', data_root=shared_real, data_mode='topdown',
             ann_file='coco/test_coco.json', data_prefix=dict(img='coco/'), pipeline=pipeline),
        dict(type='CrowdPoseDataset', group_name='crowdpose', data_root=shared_real,
             data_mode='topdown', ann_file='crowdpose/test_crowdpose.json',
             data_prefix=dict(img='crowdpose/'), pipeline=pipeline)]))
    n_coco = len(ds.get_group_dataset('coco'))
    assert n_coco == 12  # 14 persons, 2 without keypoints dropped by mmpose's filter
    assert ds.group_ids.tolist() == [0] * n_coco + [1] * len(ds.get_group_dataset(1))
    assert ds.metainfo['num_keypoints'] == 17
    assert ds.get_group_metainfo('crowdpose')['num_keypoints'] == 14
    for i in (0, n_coco - 1, n_coco, len(ds) - 1):
        s = ds[i]['data_samples']
        assert (s.group_id, s.group_name) == ((0, 'coco') if i < n_coco else (1, 'crowdpose'))


@pytest.mark.parametrize('content, cause', [
    ('{not json', 'JSONDecodeError'),
    (None, 'FileNotFoundError'),
])
def test_a_source_load_error_keeps_its_cause(tmp_path, content, cause):
    """Invalid JSON or a missing file is reported as such, not as "zero samples"."""
    from mmengine.registry import init_default_scope
    from mtl_plugin.datasets import MultiSourceDataset
    init_default_scope('mmdet')
    ann = tmp_path / 'bad.json'
    if content is not None:
        ann.write_text(content)
    with pytest.raises(ValueError, match=f'source "bad" failed to load: {cause}') as info:
        MultiSourceDataset(datasets=[dict(type='CocoDataset', group_name='bad',
                                          ann_file=str(ann), data_prefix=dict(img=''),
                                          metainfo=dict(classes=('a', )), pipeline=[])])
    assert info.value.__cause__ is not None and type(info.value.__cause__).__name__ == cause


def test_a_shared_pipeline_reaches_every_source_without_its_own(sources):
    own = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
           dict(type='PackDetInputs', meta_keys=('img_id', 'img_shape', 'ori_shape'))]
    sources[1]['pipeline'] = own  # the animal source keeps its own pipeline
    del sources[0]['pipeline']
    ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=sources, pipeline=PIPELINE))
    assert ds.pipeline == PIPELINE  # what inferencers read as test_dataloader.dataset.pipeline
    person, animal = ds[0]['data_samples'], ds[16]['data_samples']
    assert person.probe == (0, 'person')
    assert 'probe' not in animal and animal.group_id == 7
    # what normalised group weights refer to: the sizes of the dataset's groups
    assert person.group_sizes == animal.group_sizes == dict(person=16, animal=16)
    with pytest.raises(TypeError, match='pipeline must be a list'):
        MultiSourceDataset(datasets=sources, pipeline=dict(type='LoadImageFromFile'))


def test_annotations_of_unlisted_category_ids_are_reported(synthetic_root, tmp_path):
    """Issue 12: mmdet drops an annotation whose category id `categories` does not list."""
    init_default_scope('mmdet')
    with open(osp.join(synthetic_root, 'annotations', 'animal_train.json')) as f:
        coco = json.load(f)
    listed = {c['id'] for c in coco['categories']}
    stale = max(listed) + 7
    for ann in coco['annotations'][:3]:
        ann['category_id'] = stale
    path = tmp_path / 'animal_stale.json'
    path.write_text(json.dumps(coco))
    src = source(synthetic_root, 'animal', ('cat', 'bird'))
    src['ann_file'] = str(path)
    with pytest.raises(ValueError, match=rf'source "animal": 3 annotations of .*animal_stale'
                                         rf".json have category ids that its 'categories' do "
                                         rf"not list: {stale} \(3\); fix the file, or set "
                                         r"MultiSourceDataset\(unknown_categories='drop'\)"):
        MultiSourceDataset(datasets=[src])
    with mock.patch('mtl_plugin.datasets.category_check.print_log') as log:
        ds = MultiSourceDataset(datasets=[src], unknown_categories='drop')
    (message, ), kwargs = log.call_args
    assert len(ds) == 16 and '3 annotations' in message and 'dropped' in message
    assert kwargs['level'] == 30  # a warning
    # a clean file: nothing reported, the annotations all there
    clean = MultiSourceDataset(datasets=[source(synthetic_root, 'animal', ('cat', 'bird'))])
    n_boxes = sum(len(clean.get_data_info(i)['instances']) for i in range(len(clean)))
    assert n_boxes == len(coco['annotations'])
    with pytest.raises(ValueError, match="unknown_categories must be one of"):
        MultiSourceDataset(datasets=[src], unknown_categories='ignore')
