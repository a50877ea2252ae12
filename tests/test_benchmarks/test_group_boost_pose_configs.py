"""The synthetic pose schemes of benchmarks/group_boost_pose.py: every config parses, its
dataset builds on generated data (two groups, the generator's 4 keypoints with the
right <-> left flip pair) and its model builds; epoch milestones become iteration ones.
No training."""
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmpose.registry import DATASETS, MODELS

from conftest import load_tool

gbp = load_tool('benchmarks/group_boost_pose.py')
RARE_FILE = 'annotations/animal_train_rare.json'  # group_boost.make_data's reduced copy


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('pose_data'))
    gbp.make_data(root, num_train=3, rare_train=2, num_val=2, seed=1)
    return root


@pytest.mark.parametrize('name', gbp.SCHEMES)
def test_scheme_config_dataset_and_model_build(name, root, tmp_path):
    cfg = gbp.scheme_cfg(name, root, str(tmp_path), seed=0, iters=30)
    assert cfg.train_cfg == dict(type='IterBasedTrainLoop', max_iters=30, val_interval=31)
    with DefaultScope.overwrite_default_scope('mmpose'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        model = MODELS.build(cfg.model)
    sources = getattr(dataset, 'dataset', dataset)  # balanced-data wraps it
    assert sources.group_names == ['person', 'animal']
    assert set(np.unique(dataset.group_ids).tolist()) == {0, 1}
    meta = sources.metainfo
    assert meta['num_keypoints'] == 4 and meta['flip_indices'] == [0, 3, 2, 1]
    assert len(meta['sigmas']) == 4
    assert sources.datasets[1].ann_file.endswith(RARE_FILE)  # point_to: the rare file
    sample = dataset[0]
    assert sample['data_samples'].metainfo['group_id'] in (0, 1)
    assert tuple(sample['inputs'].shape) == (3, 64, 64)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert set(cfg.val_evaluator.metrics) == {'person', 'animal'}
    for g, metric in cfg.val_evaluator.metrics.items():
        assert metric.ann_file == osp.join(root, 'annotations', f'{g}_val.json')


@pytest.mark.parametrize('name, expected', [
    ('curriculum', [dict(param='model.head.loss_module.group_id_weight.1',
                         milestones=[10, 20], values=[1.0, 1.5, 2.0])]),
    ('aux-group-task', [dict(param='model.aux_head.loss_weight', milestones=[8],
                             values=[0.004, 0.0015])]),
    ('baseline', [])])
def test_iteration_milestones(name, expected, root, tmp_path):
    cfg = gbp.scheme_cfg(name, root, str(tmp_path), seed=0, iters=30)
    assert gbp.iter_milestones(cfg, 30) == expected
    for hook in cfg.get('custom_hooks', []):
        for s in hook.get('schedules', []):
            assert s['by_epoch'] is False
