"""mmpose's own tools/train.py and tools/test.py (with --show-dir) on a multi-head pose
config whose groups have different keypoint sets (COCO 17, Animal-Pose 20)."""
import glob
import os.path as osp
import shutil

import mmpose
import pytest
import torch

from conftest import PYTHON, run_tool
from tiny_pose import write_tiny_pose_config

STOCK_MMPOSE = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools')


@pytest.mark.slow
@pytest.mark.real_data
def test_stock_mmpose_train_test_and_show_dir(shared_real, tmp_path):
    root = str(tmp_path / 'real')
    shutil.copytree(shared_real, root)
    cfg = write_tiny_pose_config(root, str(tmp_path / 'tiny_pose.py'))
    work = str(tmp_path / 'work')
    run_tool([PYTHON, osp.join(STOCK_MMPOSE, 'train.py'), cfg, '--work-dir', work,
              '--cfg-options', 'train_cfg.val_interval=10'])
    ckpt = osp.join(work, 'epoch_1.pth')
    res = run_tool([PYTHON, osp.join(STOCK_MMPOSE, 'test.py'), cfg, ckpt, '--work-dir', work,
                    '--show-dir', 'vis'])
    log = res.stdout + res.stderr
    assert 'person/coco/AP:' in log and 'animal/coco/AP:' in log
    drawn = sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*', 'vis', '*')))
    # one drawing per test sample: the 12 COCO persons with keypoints, the 2 animals
    assert len(drawn) == 14
    assert {'ca110_0.jpeg', 'ho105_0.jpeg'} <= set(drawn)
    # the Runner's checkpoint: mmpose's init_model gives the model each group's keypoints
    from mmpose.apis import init_model
    model = init_model(cfg, ckpt, device='cpu')
    groups = model.dataset_meta['group_metainfo']
    assert [(g, groups[g]['num_keypoints'], len(groups[g]['skeleton_links']))
            for g in ('person', 'animal')] == [('person', 17, 19), ('animal', 20, 20)]
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert b'keypoint_metas' in bytes(state['_extra_state'].tolist())
