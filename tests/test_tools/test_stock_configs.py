"""Configs that inherit stock mmdet / mmpose configs (configs/stock/), the stock-key errors
(a key left from a stock base names the key, the class and the fix), and ``save_best``
checked against the evaluator's keys before training."""
import os.path as osp
import re
import shutil
from types import SimpleNamespace

import mmdet
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.registry import DATA_SAMPLERS, DATASETS, EVALUATOR, MODELS, DefaultScope

from conftest import PYTHON, REPO, SHARED_REAL, run_tool
from mtl_plugin.config_checks import StockKeyError
from mtl_plugin.engine.hooks import SaveBestCheckHook, check_save_best
from mtl_plugin.evaluation.metric_keys import evaluator_keys

DET = osp.join(REPO, 'configs/stock/multihead-retinanet_r18_fpn_1xb2-1e_coco-ap10k.py')
POSE = osp.join(REPO, 'configs/stock/multihead-td-hm_res18_1xb4-210e_coco-ap10k-128x96.py')
STOCK_DET = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
STOCK_POSE = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py'
STOCK_MMDET_TRAIN = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
DET_ITEMS = ['bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l']
POSE_ITEMS = ['AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)', 'AR', 'AR .5', 'AR .75', 'AR (M)',
              'AR (L)']
GROUPS = ('person', 'animal')


def _keys(items):
    return [f'{g}/coco/{k}' for g in (*GROUPS, 'mean') for k in items]


@pytest.fixture(scope='module')
def real_copy(tmp_path_factory):
    """A writable copy of ../shared/data/real (the tools write nothing there)."""
    if not osp.isdir(SHARED_REAL):
        pytest.skip(f'{SHARED_REAL} is absent')
    root = str(tmp_path_factory.mktemp('real') / 'real')
    shutil.copytree(SHARED_REAL, root)
    return root


def _at(cfg: Config, root: str) -> Config:
    """The config's sources and metrics read from ``root`` instead of ../shared/data/real."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for source in cfg[loader].dataset.datasets:
            source.data_root = root + '/'
    for evaluator in ('val_evaluator', 'test_evaluator'):
        for metric in cfg[evaluator].metrics.values():
            metric.ann_file = metric.ann_file.replace('../shared/data/real', root)
    return cfg


def _code_lines(path):
    return [line for line in open(path) if line.strip() and not line.lstrip().startswith('#')]


def _write(tmp_path, text: str) -> str:
    path = tmp_path / 'cfg.py'
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- the inherited configs
@pytest.mark.parametrize('path,stock', [(DET, STOCK_DET), (POSE, STOCK_POSE)])
def test_stock_configs_are_short_and_inherit_a_stock_base(path, stock):
    assert len(_code_lines(path)) <= 25
    assert _code_lines(path)[0] == f"_base_ = ['{stock}']\n" or _code_lines(path)[0] == (
        f"_base_ = ['{stock}',\n")


@pytest.mark.real_data
def test_mmdet_stock_config_builds_a_multi_head_detector(real_copy):
    cfg = _at(Config.fromfile(DET), real_copy)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        keys = evaluator_keys(EVALUATOR.build(cfg.val_evaluator))
    assert type(model).__name__ == 'MultiHeadDetector' and list(model.heads) == list(GROUPS)
    assert [h.num_classes for h in model.heads.values()] == [1, 2]
    # inherited from the stock config: R-18 (its Pretrained init_cfg dropped: nothing to
    # download), 256-channel FPN, 4 stacked convs per head
    assert cfg.model.backbone.init_cfg is None and 'Pretrained' not in str(model.init_cfg)
    assert model.backbone.depth == 18 and 'Pretrained' not in str(model.backbone.init_cfg)
    assert [len(h.cls_convs) for h in model.heads.values()] == [4, 4]
    assert model.neck.fpn_convs[0].conv.out_channels == 256
    assert dataset.group_names == list(GROUPS) and len(dataset) == 6
    assert max(dataset[0]['inputs'].shape[1:]) == 128  # the config's 128 px, not 1333x800
    assert keys == _keys(DET_ITEMS)


@pytest.mark.real_data
def test_mmpose_stock_config_builds_a_multi_head_pose_estimator(real_copy):
    cfg = _at(Config.fromfile(POSE), real_copy)
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = MODELS.build(cfg.model)
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        keys = evaluator_keys(EVALUATOR.build(cfg.val_evaluator))
    assert type(model).__name__ == 'MultiHeadPoseEstimator' and list(model.heads) == list(GROUPS)
    assert [h.out_channels for h in model.heads.values()] == [17, 17]
    assert [h.in_channels for h in model.heads.values()] == [512, 512]
    assert model.backbone.depth == 18
    assert dataset.group_names == list(GROUPS)
    assert tuple(dataset[0]['inputs'].shape) == (3, 128, 96)
    assert [h.type for h in cfg.custom_hooks] == ['SyncBuffersHook', 'HeadIsolationHook',
                                                  'SaveBestCheckHook']
    assert cfg.default_hooks.checkpoint.save_best == 'mean/coco/AP'
    assert keys == _keys(POSE_ITEMS)


# ---------------------------------------------------------------- stock keys
_DET_HEADS = "heads=dict(person=dict(type='RetinaHead', num_classes=1, in_channels=256))"
STOCK_KEY_CASES = {
    # (config body after _base_, what to build, key named, fix named)
    'bbox_head': (STOCK_DET, f"model = dict(type='MultiHeadDetector', {_DET_HEADS})",
                  'model', 'MultiHeadDetector', 'heads=dict(<name>=', '_delete_=True on model'),
    'head': (STOCK_POSE, "model = dict(type='MultiHeadPoseEstimator', heads=dict(person=dict("
             "type='HeatmapHead', in_channels=2048, out_channels=17)))",
             'model', 'MultiHeadPoseEstimator', 'heads=dict(<name>=', '_delete_=True on model'),
    'data_root': (STOCK_DET, "train_dataloader = dict(dataset=dict(type='MultiSourceDataset', "
                 "datasets=[dict(type='CocoDataset', group_name='person')]))",
                 'train_dataloader.dataset', 'MultiSourceDataset', 'datasets=[dict(type=...',
                 'add _delete_=True to the dataset'),
    'ann_file': (STOCK_DET, "val_evaluator = dict(type='GroupedMetric', metrics=dict(person="
                 "dict(type='CocoMetric')))", 'val_evaluator', 'GroupedMetric',
                 "metrics=dict(<group>=dict(type='CocoMetric', ann_file=...))",
               'add _delete_=True to the evaluator'),
    'gamma': (STOCK_DET, "model = dict(bbox_head=dict(loss_cls=dict(type='GroupWeightedLoss', "
              "use_sigmoid=True, loss=dict(type='mmdet.FocalLoss', use_sigmoid=True), "
              "group_id_weight={1: 2.0})))", 'model', 'GroupWeightedLoss',
              "loss=dict(type='mmdet.FocalLoss', gamma=...)", 'loss_cls=dict(_delete_=True'),
    'shuffle': (STOCK_DET, "train_dataloader = dict(sampler=dict(type='WeightedGroupSampler', "
                "group_weights=dict(animal=2.0)))", 'train_dataloader.sampler',
                'WeightedGroupSampler', 'takes no shuffle', 'add _delete_=True to the sampler'),
}


def _build(cfg: Config, what: str):
    """Build one part of a config as the Runner does."""
    scope = cfg.default_scope
    with DefaultScope.overwrite_default_scope(scope):
        if what == 'model':
            return MODELS.build(cfg.model)
        if what == 'val_evaluator':
            return EVALUATOR.build(cfg.val_evaluator)
        if what == 'train_dataloader.sampler':  # the Runner passes dataset and seed
            return DATA_SAMPLERS.build(cfg.train_dataloader.sampler,
                                       default_args=dict(dataset=[0, 1], seed=0))
        return DATASETS.build(cfg.train_dataloader.dataset)


@pytest.mark.parametrize('key', list(STOCK_KEY_CASES))
def test_a_stock_key_names_itself_the_class_and_the_fix(tmp_path, key):
    """Each config omits the ``_delete_=True`` the stock base's dict needs."""
    base, body, what, owner, fix, delete = STOCK_KEY_CASES[key]
    cfg = Config.fromfile(_write(tmp_path, f"_base_ = ['{base}']\n"
                                           "custom_imports = dict(imports=['mtl_plugin'])\n"
                                           f'{body}\n'))
    with pytest.raises(TypeError) as info:  # a TypeError, as Python's own
        _build(cfg, what)
    message = str(info.value)
    assert isinstance(info.value, StockKeyError)
    assert f'{owner} got the key {key!r}, which it does not take' in message
    assert fix in message and delete in message
    assert 'unexpected keyword argument' not in message


def test_a_stock_key_set_to_none_drops_it_and_a_typo_gets_the_close_name():
    cfg = Config.fromfile(DET)
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert cfg.model.bbox_head is None and MODELS.build(cfg.model) is not None
        with pytest.raises(StockKeyError, match=r"^MultiHeadDetector got the key 'neckk', "
                                                r"which it does not take: did you mean 'neck'\?$"):
            MODELS.build(dict(cfg.model, neckk=None))
        with pytest.raises(StockKeyError, match=r"'ann_file'.*; it also got \['data_root'\]"):
            DATASETS.build(dict(cfg.train_dataloader.dataset, ann_file='a', data_root='b'))


# ---------------------------------------------------------------- save_best
def test_check_save_best_lists_the_keys():
    keys = _keys(DET_ITEMS)
    check_save_best(['mean/coco/bbox_mAP'], keys)
    check_save_best(['auto'], keys)
    check_save_best(None, keys)
    with pytest.raises(KeyError) as info:
        check_save_best(['coco/bbox_mAP'], keys)
    message = info.value.args[0]
    assert "save_best='coco/bbox_mAP' is not a key the val evaluator reports" in message
    hint = message.split('Set save_best to one of ')[1].split('; all keys')[0]
    assert eval(hint)[:3] == ['mean/coco/bbox_mAP', 'person/coco/bbox_mAP',
                              'animal/coco/bbox_mAP']
    assert message.endswith(f'all keys: {keys}')


@pytest.mark.real_data
@pytest.mark.parametrize('save_best,fails', [('mean/coco/AP', False), ('coco/AP', True),
                                             ('person/coco/AP .5', False)])
def test_hook_checks_the_stock_pose_save_best_before_training(real_copy, save_best, fails):
    cfg = _at(Config.fromfile(POSE), real_copy)
    with DefaultScope.overwrite_default_scope('mmpose'):
        metric = EVALUATOR.build(cfg.val_evaluator)
    logs = []
    runner = SimpleNamespace(hooks=[CheckpointHook(save_best=save_best, rule='greater')],
                             val_loop=SimpleNamespace(evaluator=metric),
                             logger=SimpleNamespace(warning=logs.append))
    if fails:
        with pytest.raises(KeyError, match=r"Set save_best to one of \['mean/coco/AP', "):
            SaveBestCheckHook().before_train(runner)
    else:
        SaveBestCheckHook().before_train(runner)
    assert logs == []
    # a metric whose keys are unknown is not checked, and says so
    runner.val_loop = SimpleNamespace(evaluator=SimpleNamespace(metrics=[SimpleNamespace()]))
    SaveBestCheckHook().before_train(runner)
    assert 'save_best is not checked' in logs[0]


@pytest.mark.slow
@pytest.mark.real_data
def test_a_bad_save_best_fails_in_before_train_of_a_runner(real_copy, tmp_path):
    """The stock mmdet name 'coco/bbox_mAP' fails before the first iteration, listing ours."""
    from mmengine.runner import Runner
    cfg = _at(Config.fromfile(DET), real_copy)
    cfg.work_dir = str(tmp_path)
    cfg.default_hooks.checkpoint.save_best = 'coco/bbox_mAP'
    runner = Runner.from_cfg(cfg)
    with pytest.raises(KeyError, match=r"one of \['mean/coco/bbox_mAP', 'person/coco/bbox_mAP'"):
        runner.train()
    assert runner.iter == 0 and not list(tmp_path.glob('*.pth'))


# ---------------------------------------------------------------- through the stock tools
def _logged_val_keys(log: str) -> set:
    line = next(line for line in log.splitlines() if 'Epoch(val)' in line and 'coco/' in line)
    return set(re.findall(r'(\S+): -?\d', line.split('Epoch(val)')[1])) - {'time', 'data_time'}


def _assert_static_keys_are_the_reported_ones(reported: set, static: list) -> None:
    """What ``metric_keys`` knows before training is what the run reported: every
    per-group key, and the means (a mean is left out where a group reports COCO's -1)."""
    assert reported <= set(static), sorted(reported - set(static))
    assert {k for k in static if not k.startswith('mean/')} <= reported
    assert {f'mean/coco/{k}' for k in ('bbox_mAP', 'AP') if f'mean/coco/{k}' in static} <= reported


@pytest.mark.slow
@pytest.mark.real_data
def test_stock_mmdet_train_on_the_inherited_config(real_copy, tmp_path):
    """mmdet's own tools/train.py: 1 epoch at 128 px, per-group metrics, best checkpoint."""
    opts = [f'{loader}.dataset.datasets.{i}.data_root={real_copy}/'
            for loader in ('train_dataloader', 'val_dataloader') for i in (0, 1)] + [
        f'val_evaluator.metrics.person.ann_file={real_copy}/coco/test_coco.json',
        f'val_evaluator.metrics.animal.ann_file={real_copy}/ap10k/test_ap10k.json',
        'model.test_cfg.score_thr=0.0', 'model.test_cfg.max_per_img=10',
        'default_hooks.logger.interval=1']
    work = str(tmp_path)
    res = run_tool([PYTHON, STOCK_MMDET_TRAIN, DET, '--work-dir', work, '--cfg-options', *opts])
    log = res.stdout + res.stderr
    assert 'Epoch(train) [1][3/3]' in log
    for key in ('person.loss_cls', 'animal.loss_cls', *[f'{k}:' for k in _keys(DET_ITEMS[:3])]):
        assert key in log, key
    _assert_static_keys_are_the_reported_ones(_logged_val_keys(log), _keys(DET_ITEMS))
    state = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert '_extra_state' in state
    assert {k.split('.')[1] for k in state if k.startswith('heads.')} == set(GROUPS)
    assert osp.isfile(osp.join(work, 'best_mean_coco_bbox_mAP_epoch_1.pth'))


@pytest.mark.slow
@pytest.mark.real_data
def test_runner_trains_the_inherited_pose_config(real_copy, tmp_path):
    """Four iterations and a validation of the mmpose-based config in a Runner."""
    from mmengine.runner import Runner
    cfg = _at(Config.fromfile(POSE), real_copy)
    cfg.work_dir = str(tmp_path)
    # 4 iterations: one pass over the 14 instances (batch 4), so both heads train
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4)
    cfg.param_scheduler = []
    cfg.log_processor.by_epoch = False
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=4, by_epoch=False,
                                        save_best='mean/coco/AP', rule='greater')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    scalars = runner.message_hub.log_scalars
    assert {'train/person.loss_kpt', 'train/animal.loss_kpt'} <= set(scalars)
    assert {f'val/{k}' for k in _keys(POSE_ITEMS[:3])} <= set(scalars)
    reported = {k[4:] for k in scalars if k.startswith('val/')} - {'time', 'data_time'}
    _assert_static_keys_are_the_reported_ones(reported, evaluator_keys(runner.val_evaluator))
    assert osp.isfile(osp.join(str(tmp_path), 'best_mean_coco_AP_iter_4.pth'))
