"""Early stopping: a ``monitor`` the evaluator never reports fails before training (MMEngine
only warns at every validation and never stops), and ``TestableEarlyStoppingHook`` lets a
test run (stock ``tools/test.py``) evaluate without the training files."""
import os.path as osp
import shutil
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.hooks import EarlyStoppingHook
from mmengine.registry import EVALUATOR, DefaultScope

from conftest import REPO
from mtl_plugin.engine.hooks import SaveBestCheckHook, TestableEarlyStoppingHook

CONFIG = osp.join(REPO, 'configs/mtl/mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py')


def _at(cfg: Config, root: str) -> Config:
    """Every dataset and val/test metric of the mtl detector config at ``root``."""
    for split in ('train', 'val', 'test'):
        for d in cfg[f'{split}_dataloader'].dataset.datasets:
            d.data_root = root + '/'
    for key in ('val_evaluator', 'test_evaluator'):
        for g, m in cfg[key].metrics.items():
            m.ann_file = f'{root}/annotations/{g}_val.json'
    return cfg


def _runner(hooks, synthetic_root):
    cfg = _at(Config.fromfile(CONFIG), synthetic_root)
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = EVALUATOR.build(cfg.val_evaluator)
    logs = []
    return SimpleNamespace(hooks=hooks, val_loop=SimpleNamespace(evaluator=metric),
                           logger=SimpleNamespace(warning=logs.append)), logs


@pytest.mark.parametrize('hook_type', [EarlyStoppingHook, TestableEarlyStoppingHook])
def test_a_monitor_the_evaluator_never_reports_fails_before_training(synthetic_root, hook_type):
    runner, logs = _runner([hook_type(monitor='coco/bbox_mAP')], synthetic_root)
    with pytest.raises(KeyError) as info:
        SaveBestCheckHook().before_train(runner)
    message = info.value.args[0]
    assert message.startswith(f"{hook_type.__name__}.monitor='coco/bbox_mAP' is not a key the "
                              'val evaluator reports, so training would never stop early')
    assert "Set monitor to one of ['mean/coco/bbox_mAP', 'person/coco/bbox_mAP', " in message
    runner.hooks = [hook_type(monitor='animal/coco/bbox_mAP_50')]
    SaveBestCheckHook().before_train(runner)  # a key it reports
    assert logs == []


def test_the_train_loop_check_waits_for_training():
    class NoTrainLoop:
        @property
        def train_loop(self):
            raise AssertionError('a test run must not build the train loop')

    hook = TestableEarlyStoppingHook(monitor='mean/coco/bbox_mAP')
    hook.before_run(NoTrainLoop())  # what runner.test() calls
    with pytest.raises(AssertionError, match='must not build the train loop'):
        hook.before_train(NoTrainLoop())
    with pytest.raises(AssertionError, match='should contain `stop_training`'):
        hook.before_train(SimpleNamespace(train_loop=SimpleNamespace()))
    hook.before_train(SimpleNamespace(train_loop=SimpleNamespace(stop_training=False)))


@pytest.mark.slow
def test_a_checkpoint_is_tested_without_the_training_files(synthetic_root, tmp_path):
    """runner.test() (what mmdet's tools/test.py runs) on the mtl config whose training files
    are gone: the stock EarlyStoppingHook would build the train dataloader and fail."""
    from mmengine.runner import Runner
    root = str(tmp_path / 'data')
    shutil.copytree(synthetic_root, root)
    for g in ('person', 'animal'):
        shutil.os.remove(f'{root}/annotations/{g}_train.json')
    cfg = _at(Config.fromfile(CONFIG), root)
    cfg.work_dir = str(tmp_path / 'work')
    metrics = Runner.from_cfg(cfg).test()
    assert set(metrics) >= {'person/coco/bbox_mAP', 'animal/coco/bbox_mAP',
                            'mean/coco/bbox_mAP'}
    cfg = _at(Config.fromfile(CONFIG), root)
    cfg.work_dir = str(tmp_path / 'work_stock')
    cfg.custom_hooks[-1].type = 'EarlyStoppingHook'  # the stock hook: needs the train files
    with pytest.raises(ValueError, match='person_train.json'):
        Runner.from_cfg(cfg).test()
