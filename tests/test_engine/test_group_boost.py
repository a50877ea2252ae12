"""Every group_boost scheme trains for a few iterations (detection: generated data, in one
process; pose: the combined and auxiliary-task configs on the real samples)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from conftest import PYTHON, REPO, run_tool

DET = sorted(glob.glob(osp.join(REPO, 'configs/group_boost/*_synthetic.py')))
DET = [p for p in DET if 'ensemble' not in p]  # inference-only, tested in test_ensemble.py


def _point_to(cfg, root):
    def visit(node):
        if isinstance(node, dict):
            if node.get('type') == 'CocoDataset':
                node['data_root'] = root + '/'
            for v in node.values():
                visit(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                visit(v)
    visit(cfg.train_dataloader)


def test_there_is_a_config_per_scheme():
    names = {osp.basename(p).split('_')[0] for p in glob.glob(
        osp.join(REPO, 'configs/group_boost/*.py'))}
    assert {'baseline', 'loss-weight', 'weighted-sampler', 'group-augment', 'focal-heatmap',
            'curriculum', 'balanced-data', 'aux-group-task', 'ensemble', 'combined'} <= names


@pytest.mark.slow
@pytest.mark.parametrize('path', DET, ids=osp.basename)
def test_detection_scheme_trains(path, synthetic_root, tmp_path):
    cfg = Config.fromfile(path)
    _point_to(cfg, synthetic_root)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=100)
    cfg.train_dataloader.batch_size = 8
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg',
                'test_evaluator'):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.visualizer.name = f'vis_{osp.basename(path)}'
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 1 and runner.iter >= 2
    scalars = runner.message_hub.log_scalars
    assert any(k.startswith('train/') and 'loss' in k for k in scalars)
    if 'curriculum' in path or 'combined' in path or 'aux' in path:
        assert any('curriculum' in k for k in scalars)


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize('name', ['combined', 'aux-group-task'])
def test_pose_scheme_real_data_run(name, shared_real, tmp_path):
    res = run_tool([PYTHON, 'tools/train.py',
                    f'configs/group_boost/{name}_td-hm_res18_coco-crowdpose.py',
                    '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=2',
                    'train_cfg.val_interval=2'])
    log = res.stdout + res.stderr
    assert 'Epoch(train) [2][' in log and 'coco/coco/AP:' in log
    if name == 'combined':
        assert 'curriculum/model.head.loss_module.group_id_weight.1: 1.500000' in log
    else:
        assert 'aux.loss_dataset_cls' in log
