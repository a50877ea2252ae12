"""mmpose's own tools/train.py and tools/test.py (with --show-dir) on a multi-head pose
config whose groups have different keypoint sets (COCO 17, Animal-Pose 20)."""
import glob
import os.path as osp
import shutil

import mmpose
import pytest
import torch

from conftest import PYTHON, REPO, run_tool
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


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize('scheme', ['focal-heatmap', 'aux-group-task'])
def test_pose_scheme_at_mmpose_doors(scheme, shared_real, tmp_path):
    """Group-boost pose schemes (COCO + CrowdPose) through mmpose's own tools/train.py,
    tools/test.py --show-dir and MMPoseInferencer. The focal one (SigmoidHeatmapHead +
    GroupWeightedFocalHeatmapLoss): its scores are probabilities at every door; the
    auxiliary group task: its dataset head trains and stays out of inference."""
    from mmpose.apis import MMPoseInferencer
    cfg = osp.join(REPO, f'configs/group_boost/{scheme}_td-hm_res18_coco-crowdpose.py')
    work = str(tmp_path / 'work')
    res = run_tool([PYTHON, osp.join(STOCK_MMPOSE, 'train.py'), cfg, '--work-dir', work,
                    '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=10'])
    assert 'loss_kpt' in res.stdout + res.stderr
    if scheme == 'aux-group-task':
        assert 'aux.loss_dataset_cls' in res.stdout + res.stderr
    ckpt = osp.join(work, 'epoch_1.pth')
    res = run_tool([PYTHON, osp.join(STOCK_MMPOSE, 'test.py'), cfg, ckpt, '--work-dir', work,
                    '--show-dir', 'vis'])
    assert 'coco/AP:' in res.stdout + res.stderr
    assert glob.glob(osp.join(work, '*', 'vis', '*.jp*g'))
    inferencer = MMPoseInferencer(pose2d=cfg, pose2d_weights=ckpt, device='cpu')
    model = inferencer.inferencer.model
    if scheme == 'focal-heatmap':
        assert type(model.head).__name__ == 'SigmoidHeatmapHead'
    else:  # keypoint head + dataset head on one trunk
        assert type(model).__name__ == 'MultiHeadPoseEstimator'
    out = str(tmp_path / 'inferencer')
    result = next(inferencer(osp.join(shared_real, 'coco/000000000785.jpg'), vis_out_dir=out,
                             return_datasamples=True))
    scores = result['predictions'][0].pred_instances.keypoint_scores
    assert scores.shape[-1] == 17  # CrowdPose converted to COCO's 17
    if scheme == 'focal-heatmap':
        assert ((scores > 0) & (scores < 1)).all()  # heatmap maxima of a sigmoid
    assert osp.isfile(osp.join(out, '000000000785.jpg'))
