"""The model owns its groups and label spaces: no hook needed, and they travel in checkpoints."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope
from tiny_models import GROUP_CLASSES, backbone_neck, batch, build_detector, retina, TRAIN_CFG, \
    TEST_CFG

from mtl_plugin.datasets import MultiSourceDataset
from mtl_plugin.labels import LabelSpace

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                  'scale_factor'))]


def _sources(root, split, test_mode, **kw):
    return dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoDataset', group_name=name, data_root=root,
             ann_file=f'annotations/{name}_{split}.json', data_prefix=dict(img=f'images/{name}/'),
             metainfo=dict(classes=classes), test_mode=test_mode, pipeline=PIPELINE,
             filter_cfg=None if test_mode else dict(filter_empty_gt=True))
        for name, classes in GROUP_CLASSES.items()], **kw)


def _runner_cfg(root, tmp_path, heads=None, **dataset_kw):
    model = dict(type='MultiHeadDetector', **backbone_neck(),
                 heads=heads or dict(person=retina(1), animal=retina(2)),
                 train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)
    loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='pseudo_collate'))
    metrics = {n: dict(type='CocoMetric', ann_file=osp.join(root, f'annotations/{n}_val.json'),
                       metric='bbox') for n in GROUP_CLASSES}
    return dict(
        model=model, work_dir=str(tmp_path), default_scope='mmdet',
        train_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=False),
                              dataset=_sources(root, 'train', False, **dataset_kw)),
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler', shuffle=False),
                            dataset=_sources(root, 'val', True, **dataset_kw)),
        val_evaluator=dict(type='GroupedMetric', metrics=metrics),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2),
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.001, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        log_level='WARNING', custom_hooks=[])  # no HeadIsolationHook on purpose


@pytest.mark.slow
def test_train_val_and_checkpoint_without_any_hook(synthetic_root, tmp_path):
    """Merged inference and GroupedMetric work with no hook; the label space is in the ckpt."""
    from mmengine.runner import Runner
    cfg = _runner_cfg(synthetic_root, tmp_path)
    runner = Runner(**cfg)
    runner.train()
    model = runner.model
    assert model.label_space.unified_classes == ('person', 'cat', 'bird')
    assert model.groups.to_dict() == dict(person=0, animal=1)
    scalars = runner.message_hub.log_scalars
    assert 'val/person/coco/bbox_mAP' in scalars and 'val/animal/coco/bbox_mAP' in scalars
    ckpt = torch.load(osp.join(str(tmp_path), 'iter_2.pth'), map_location='cpu',
                      weights_only=True)
    assert ckpt['state_dict']['_extra_state'].dtype == torch.uint8
    assert ckpt['meta']['dataset_meta']['label_spaces']['unified_classes'] == \
        ['person', 'cat', 'bird']
    # a fresh model reading only the state dict knows the groups and label spaces
    fresh = build_detector()
    assert fresh.groups is None
    fresh.load_state_dict(ckpt['state_dict'])
    assert fresh.groups.to_dict() == dict(person=0, animal=1)
    assert fresh.label_space == model.label_space


def test_samples_carry_groups_and_label_space(synthetic_root):
    init_default_scope('mmdet')
    dataset = MultiSourceDataset(**{k: v for k, v in _sources(
        synthetic_root, 'val', True, class_mapping=dict(animal=dict(cat='feline'))).items()
        if k != 'type'})
    meta = dataset[0]['data_samples'].metainfo
    assert meta['groups'] == dict(person=0, animal=1)
    space = LabelSpace.from_dict(meta['label_space'])
    assert space.unified_classes == ('person', 'feline', 'bird')
    assert space == LabelSpace.from_dict(dataset.metainfo['label_spaces'])


def test_heads_are_checked_on_first_meeting_without_a_hook():
    """The first forward checks heads vs groups, before any loss (nothing is updated)."""
    model = build_detector(heads=dict(person=retina(1), animal=retina(3)))
    data = batch(['person', 'animal'])
    space = LabelSpace(GROUP_CLASSES).to_dict()
    for s in data['data_samples']:
        s.set_metainfo(dict(groups=dict(person=0, animal=1), label_space=space))
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r'head "animal" predicts 3 outputs but its dataset '
                                         r'"animal" has 2'):
        model.train_step(data, _sgd(model))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model = build_detector(heads=dict(person=retina(1)))
    with pytest.raises(KeyError, match='group "animal" has no head'):
        model.train_step(copy.deepcopy(data), _sgd(model))
    # predict meets the samples too (a test set of another dataset)
    model = build_detector(heads=dict(person=retina(1), animal=retina(3)))
    model.eval()
    with pytest.raises(ValueError, match='predicts 3 outputs'):
        model.test_step(copy.deepcopy(data))


def _sgd(model):
    from mmengine.optim import OptimWrapper
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))


def test_class_mapping_reaches_model_and_grouped_metric():
    """With class_mapping, merged predictions map back to each group's own labels."""
    from mtl_plugin.evaluation import GroupedMetric
    init_default_scope('mmdet')
    space = LabelSpace(GROUP_CLASSES, class_mapping=dict(animal=dict(cat='feline')))
    model = build_detector()
    model.adopt(groups=dict(person=0, animal=1), label_space=space.to_dict())
    assert model.label_space.unified_classes == ('person', 'feline', 'bird')
    labels = model.head_to_unified('animal', torch.tensor([0, 1]))
    assert labels.tolist() == [1, 2]
    metric = GroupedMetric(metrics=dict(person=dict(type='DumpResults', out_file_path='x.pkl'),
                                        animal=dict(type='DumpResults', out_file_path='y.pkl')))
    meta = dict(classes=space.unified_classes, label_spaces=space.to_dict(),
                group_name_to_id=dict(person=0, animal=1),
                group_metainfo={g: dict(classes=c) for g, c in GROUP_CLASSES.items()})
    metric.dataset_meta = meta  # raised "classes ['cat'] ... not in the unified classes" before
    pred = dict(group_name='animal', pred_label_space='unified',
                pred_instances=dict(labels=torch.tensor([1, 2, 0]),
                                    bboxes=torch.zeros(3, 4), scores=torch.ones(3)))
    local = metric._to_group_labels('animal', pred)
    assert local['pred_instances']['labels'].tolist() == [0, 1]
