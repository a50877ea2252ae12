"""End-to-end runs of tools/*.py (and the stock mmdet/mmpose tools) in subprocesses."""
import glob
import os
import os.path as osp
import socket

import mmdet
import mmpose
import pytest
import torch

from conftest import PYTHON, REPO, run_tool

DEMO_UNION = 'configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py'
REAL_DET = 'configs/multihead/multihead-retinanet_r18_fpn_1xb2-1e_coco-ap10k.py'
REAL_POSE = 'configs/pose/td-hm_res18_1xb4-1e_coco-crowdpose-128x96.py'
STOCK_MMDET_TRAIN = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
STOCK_MMPOSE_TRAIN = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', 'train.py')
# no random transform, so that a resumed run can be compared bit for bit
# keep every box at test time, so both groups get predictions from a barely trained model
LOOSE_TEST = ['model.test_cfg.score_thr=0.0', 'model.test_cfg.max_per_img=3000',
              'model.test_cfg.nms_pre=3000']
NO_FLIP = [f'train_dataloader.dataset.datasets.{i}.pipeline.3.prob=0.0' for i in (0, 1)]


def _synthetic_opts(root):
    return [f'train_dataloader.dataset.datasets.{i}.data_root={root}/' for i in (0, 1)] + \
        [f'val_dataloader.dataset.datasets.{i}.data_root={root}/' for i in (0, 1)] + \
        [f'val_evaluator.metrics.{g}.ann_file={root}/annotations/{g}_val.json'
         for g in ('person', 'animal')]


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


@pytest.mark.slow
@pytest.mark.real_data
def test_real_detection_train_and_test(shared_real, tmp_path):
    work = str(tmp_path / 'det')
    out = run_tool([PYTHON, 'tools/train.py', REAL_DET, '--work-dir', work,
                    '--cfg-options', *LOOSE_TEST])
    log = out.stdout + out.stderr
    assert 'Epoch(train) [1][3/3]' in log
    for key in ('person.loss_cls', 'animal.loss_bbox'):
        assert key in log
    ckpt = osp.join(work, 'epoch_1.pth')
    res = run_tool([PYTHON, 'tools/test.py', REAL_DET, ckpt, '--work-dir', work,
                    '--cfg-options', *LOOSE_TEST])
    log = res.stdout + res.stderr
    for key in ('person/coco/bbox_mAP:', 'animal/coco/bbox_mAP:', 'mean/coco/bbox_mAP:'):
        assert key in log


@pytest.mark.slow
@pytest.mark.real_data
def test_real_pose_train_through_stock_mmpose_tool(shared_real, tmp_path):
    res = run_tool([PYTHON, STOCK_MMPOSE_TRAIN, REAL_POSE, '--work-dir', str(tmp_path)])
    log = res.stdout + res.stderr
    assert 'Epoch(train) [1][' in log and 'coco/coco/AP:' in log


@pytest.mark.slow
def test_resume_gives_the_same_weights_as_one_run(synthetic_root, tmp_path):
    opts = _synthetic_opts(synthetic_root) + NO_FLIP + ['train_cfg.val_interval=10']
    full, part = str(tmp_path / 'full'), str(tmp_path / 'part')
    run_tool([PYTHON, 'tools/train.py', DEMO_UNION, '--work-dir', full,
              '--cfg-options', 'train_cfg.max_epochs=2', *opts])
    run_tool([PYTHON, 'tools/train.py', DEMO_UNION, '--work-dir', part,
              '--cfg-options', 'train_cfg.max_epochs=1', *opts])
    res = run_tool([PYTHON, 'tools/train.py', DEMO_UNION, '--work-dir', part, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2', *opts])
    assert 'resumed epoch: 1' in res.stdout + res.stderr
    a, b = _weights(osp.join(full, 'epoch_2.pth')), _weights(osp.join(part, 'epoch_2.pth'))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    first = _weights(osp.join(part, 'epoch_1.pth')) if osp.exists(
        osp.join(part, 'epoch_1.pth')) else None
    assert first is None or any(not torch.equal(first[k], b[k]) for k in b)


@pytest.mark.slow
def test_stock_mmdet_tool_runs_and_resumes_our_config(synthetic_root, tmp_path):
    opts = _synthetic_opts(synthetic_root) + ['train_cfg.val_interval=10']
    work = str(tmp_path)
    run_tool([PYTHON, STOCK_MMDET_TRAIN, DEMO_UNION, '--work-dir', work,
              '--cfg-options', 'train_cfg.max_epochs=1', *opts])
    res = run_tool([PYTHON, STOCK_MMDET_TRAIN, DEMO_UNION, '--work-dir', work, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2', *opts])
    assert 'resumed epoch: 1' in res.stdout + res.stderr
    assert osp.exists(osp.join(work, 'epoch_2.pth'))


@pytest.mark.slow
def test_two_process_ddp_on_cpu(synthetic_root, tmp_path):
    opts = _synthetic_opts(synthetic_root) + LOOSE_TEST + [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
    res = run_tool(['bash', 'tools/dist_train.sh', DEMO_UNION, '2', '--work-dir', str(tmp_path),
                    '--cfg-options', *opts], env=dict(PORT=str(_free_port()), PYTHON=PYTHON))
    log = res.stdout + res.stderr
    assert 'Distributed training: True' in log
    # 32 training images, batch 8 per rank, 2 ranks -> 2 iterations per epoch
    assert 'Epoch(train) [1][2/2]' in log
    assert 'person/coco/bbox_mAP:' in log and 'animal/coco/bbox_mAP:' in log
    assert glob.glob(osp.join(str(tmp_path), 'epoch_1.pth'))


@pytest.mark.slow
def test_tool_help():
    for tool in ('tools/train.py', 'tools/test.py', 'tools/generate_data.py'):
        assert 'usage' in run_tool([PYTHON, tool, '--help']).stdout


@pytest.mark.slow
def test_test_tool_missing_checkpoint_is_one_clear_line(tmp_path):
    import subprocess
    proc = subprocess.run([PYTHON, 'tools/test.py', DEMO_UNION, str(tmp_path / 'nope.pth')],
                          cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith('error: checkpoint not found')


STOCK_MMDET_TEST = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
DEMO_MULTI = 'configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py'


@pytest.mark.slow
def test_stock_mmdet_train_and_test_without_any_hook(synthetic_root, tmp_path):
    """mmdet's own train.py / test.py, no HeadIsolationHook: the model's label spaces come
    from the samples and its checkpoint, and GroupedMetric evaluates each group."""
    root = synthetic_root
    test_opts = [f'test_dataloader.dataset.datasets.{i}.data_root={root}/' for i in (0, 1)] + \
        [f'test_evaluator.metrics.{g}.ann_file={root}/annotations/{g}_val.json'
         for g in ('person', 'animal')]
    work = str(tmp_path)
    run_tool([PYTHON, STOCK_MMDET_TRAIN, DEMO_MULTI, '--work-dir', work, '--cfg-options',
              'train_cfg.max_epochs=1', 'train_cfg.val_interval=10', 'custom_hooks=[]',
              *_synthetic_opts(root)])
    ckpt = osp.join(work, 'epoch_1.pth')
    assert '_extra_state' in _weights(ckpt)
    res = run_tool([PYTHON, STOCK_MMDET_TEST, DEMO_MULTI, ckpt, '--work-dir', work,
                    '--cfg-options', 'custom_hooks=[]', *LOOSE_TEST, *test_opts])
    log = res.stdout + res.stderr
    assert 'HeadIsolationHook' not in log
    assert 'person/coco/bbox_mAP:' in log and 'animal/coco/bbox_mAP:' in log


@pytest.mark.slow
def test_two_node_launch_on_one_machine(synthetic_root, tmp_path):
    """``torchrun --nnodes 2`` (one launch per node, as on a cluster), multi-head model."""
    import subprocess
    port = str(_free_port())
    opts = _synthetic_opts(synthetic_root) + ['train_cfg.max_epochs=1', 'train_cfg.val_interval=10']
    procs = [subprocess.Popen(
        ['bash', 'tools/dist_train.sh', DEMO_MULTI, '1', '--work-dir', str(tmp_path),
         '--cfg-options', *opts], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHON=PYTHON,
                            NNODES='2', NODE_RANK=str(rank), PORT=port))
        for rank in (0, 1)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert 'Distributed training: True' in logs[0] and 'GPU number: 2' in logs[0]
    # 32 training images, batch 8 per rank, 2 ranks (one per node) -> 2 iterations per epoch
    assert 'Epoch(train) [1][2/2]' in logs[0]
    assert osp.exists(osp.join(str(tmp_path), 'epoch_1.pth'))


@pytest.mark.slow
def test_the_readme_demo_runs_end_to_end(tmp_path):
    """README's first command (tools/demo.sh -> tools/demo.py), shortened: it trains, tests,
    draws GT under the unified names and writes the metrics."""
    import json
    work = tmp_path / 'work'
    res = run_tool([PYTHON, 'tools/demo.py', '--data-root', str(tmp_path / 'data'),
                    '--work-dir', str(work), '--num-train', '8', '--epochs', '1'])
    # one epoch on 8 images predicts nothing above the score threshold yet: mmdet's
    # CocoMetric then reports no number, and the demo still writes both outputs
    assert isinstance(json.loads((work / 'metrics.json').read_text()), dict)
    assert (work / 'predictions.png').read_bytes()[:4] == b'\x89PNG'
    assert 'predictions:' in res.stdout
