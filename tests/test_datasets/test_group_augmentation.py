import copy
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DATASETS, TRANSFORMS, init_default_scope

from mtl_plugin.datasets.transforms import GroupBasedAugmentation


def det_dataset(root, aug):
    init_default_scope('mmdet')
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                aug, dict(type='PackDetInputs')]
    return DATASETS.build(dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoDataset', group_name=name, data_root=root, group_id=gid,
             ann_file=f'annotations/{name}_train.json', data_prefix=dict(img=f'images/{name}/'),
             metainfo=dict(classes=classes), pipeline=copy.deepcopy(pipeline))
        for name, gid, classes in (('person', 0, ('person', )), ('animal', 7, ('cat', 'bird')))]))


@pytest.mark.parametrize('key', ['animal', 7])
def test_mmdet_pipeline_dispatches_by_name_and_id(synthetic_root, key):
    aug = dict(type='GroupBasedAugmentation', transforms={
        key: [dict(type='RandomFlip', prob=1.0)], 'default': [dict(type='RandomFlip', prob=0.0)]})
    ds = det_dataset(synthetic_root, aug)
    flips = {}
    for i in (0, 15, 16, 31):
        meta = ds[i]['data_samples'].metainfo
        flips[meta['group_name']] = flips.get(meta['group_name'], []) + [meta['flip']]
    assert flips == dict(person=[False, False], animal=[True, True])
    # the animal boxes really are mirrored: x1' = W - x2
    sample = ds[16]['data_samples']
    ann = json.load(open(osp.join(synthetic_root, 'annotations/animal_train.json')))
    width = next(im['width'] for im in ann['images'] if im['id'] == sample.img_id)
    x2 = sorted(a['bbox'][0] + a['bbox'][2] for a in ann['annotations']
                if a['image_id'] == sample.img_id)
    got = sorted(sample.gt_instances.bboxes.tensor[:, 0].tolist())
    np.testing.assert_allclose(got, sorted(width - x for x in x2), atol=1e-3)


def test_mmpose_pipeline_dispatches(shared_real):
    init_default_scope('mmpose')

    def source(name, kind, folder, ann):
        return dict(type=kind, group_name=name, data_root=shared_real + '/', data_mode='topdown',
                    ann_file=f'{folder}/{ann}', data_prefix=dict(img=f'{folder}/'),
                    pipeline=[dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                              dict(type='GroupBasedAugmentation', transforms={
                                  'person': [dict(type='RandomFlip', prob=1.0)],
                                  'default': []}),
                              dict(type='TopdownAffine', input_size=(48, 64)),
                              dict(type='PackPoseInputs')])

    ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=[
        source('person', 'CocoDataset', 'coco', 'test_coco.json'),
        source('animal', 'AP10KDataset', 'ap10k', 'test_ap10k.json')]))
    person, animal = ds[0]['data_samples'], ds[len(ds) - 1]['data_samples']
    assert (person.group_name, person.flip) == ('person', True)
    assert animal.group_name == 'animal' and 'flip' not in animal.metainfo


@pytest.mark.parametrize('scope', ['mmdet', 'mmpose', 'mmengine'])
def test_every_scope_finds_it(scope):
    init_default_scope(scope)
    registry = dict(mmdet='mmdet.registry', mmpose='mmpose.registry').get(scope)
    if registry is not None:
        registry = __import__(registry, fromlist=['TRANSFORMS']).TRANSFORMS
    else:
        registry = TRANSFORMS
    aug = registry.build(dict(type='GroupBasedAugmentation', transforms={'default': []}))
    assert isinstance(aug, GroupBasedAugmentation)
    assert aug(dict(group_id=3, group_name='x', img=1)) == dict(group_id=3, group_name='x', img=1)


def test_branch_selection_and_missing_branch():
    init_default_scope('mmengine')
    tag = [lambda r: dict(r, tag=1)]
    aug = GroupBasedAugmentation({1: tag, 'animal': [lambda r: dict(r, tag='animal')]})
    assert aug(dict(group_id=1, group_name='animal'))['tag'] == 1  # the id wins
    assert aug(dict(group_id=np.int64(1)))['tag'] == 1
    assert aug(dict(group_id=4, group_name='animal'))['tag'] == 'animal'
    with pytest.raises(KeyError, match=r"group_id=2, group_name='person'.*\[1, 'animal'\]"):
        aug(dict(group_id=2, group_name='person'))
    with pytest.raises(KeyError, match='neither group_id nor group_name.*MultiSourceDataset'):
        aug(dict(img=1))


def test_repr_echoes_the_arguments():
    transforms = {1: [dict(type='RandomFlip', prob=1.0)], 'default': []}
    init_default_scope('mmdet')
    aug = GroupBasedAugmentation(transforms)
    assert repr(aug) == ("GroupBasedAugmentation(transforms={1: [{'type': 'RandomFlip', "
                         "'prob': 1.0}], 'default': []})")
    assert transforms == {1: [dict(type='RandomFlip', prob=1.0)], 'default': []}  # not mutated


@pytest.mark.parametrize('transforms, match', [
    ({}, 'non-empty dict'),
    ([dict(type='RandomFlip')], 'non-empty dict'),
    ({'default': dict(type='RandomFlip')}, r"transforms\['default'\] must be a list"),
    ({1: ['RandomFlip']}, r"transforms\[1\] must be a list of transform configs.*'RandomFlip'"),
    ({True: []}, 'keys must be group ids.*True'),
    ({1.5: []}, 'keys must be group ids.*1.5'),
])
def test_construction_is_validated(transforms, match):
    with pytest.raises(TypeError, match=match):
        GroupBasedAugmentation(transforms)
