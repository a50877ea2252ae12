import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, MODELS, init_default_scope

from conftest import REPO
from mtl_plugin.engine import HeadIsolationHook

CONFIG = f'{REPO}/configs/pose/multihead-td-hm_res18_1xb4-1e_coco-ap10k-128x96.py'


@pytest.fixture(scope='module')
def pose_setup(shared_real):
    init_default_scope('mmpose')
    cfg = Config.fromfile(CONFIG)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    for src in ds_cfg.datasets:
        src.data_root = shared_real + '/'
    dataset = DATASETS.build(ds_cfg)
    return cfg, dataset


def _model(cfg, **override):
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.update(override)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def _batch(dataset, group):
    idx = [i for i, g in enumerate(dataset.group_ids) if g == group][:2]
    return pseudo_collate([dataset[i] for i in idx])


def test_pose_heads_are_isolated_and_routed(pose_setup):
    cfg, dataset = pose_setup
    model = _model(cfg)
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                                             weight_decay=1e-2)))
    HeadIsolationHook().before_train(SimpleNamespace(
        model=model, optim_wrapper=wrapper,
        train_dataloader=SimpleNamespace(dataset=dataset)))
    model.train()
    mixed = pseudo_collate([dataset[0], dataset[len(dataset) - 1]])
    losses = model.train_step(mixed, wrapper)
    assert {'person.loss_kpt', 'animal.loss_kpt'} <= set(losses)
    before = {k: v.clone() for k, v in model.heads['animal'].state_dict().items()}
    person_before = {k: v.clone() for k, v in model.heads['person'].state_dict().items()}
    losses = model.train_step(_batch(dataset, 0), wrapper)
    assert 'animal.loss_kpt' not in losses
    after = model.heads['animal'].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BN buffers
    assert any(not torch.equal(person_before[k], v)
               for k, v in model.heads['person'].state_dict().items())


def test_pose_predictions_come_from_the_group_head(pose_setup):
    cfg, dataset = pose_setup
    model = _model(cfg)
    model.eval()
    calls = {}
    for name, head in model.heads.items():
        orig = head.predict

        def spy(feats, samples, test_cfg=None, _orig=orig, _name=name):
            calls[_name] = [s.group_name for s in samples]
            return _orig(feats, samples, test_cfg=test_cfg)
        head.predict = spy
    data = pseudo_collate([dataset[0], dataset[len(dataset) - 1], dataset[1]])
    with torch.no_grad():
        out = model.test_step(data)
    assert calls == dict(person=['person', 'person'], animal=['animal'])
    assert [o.pred_instances.keypoints.shape for o in out] == [(1, 17, 2)] * 3


def test_pose_keypoint_mismatch_is_reported(pose_setup):
    cfg, dataset = pose_setup
    heads = copy.deepcopy(cfg.model.heads)
    heads.animal.out_channels = 20
    model = _model(cfg, heads=heads)
    with pytest.raises(ValueError, match=r'head "animal" predicts 20 outputs but its dataset '
                                         r'"animal" has 17'):
        model.dataset_meta = dataset.metainfo


def test_pose_keypoint_mismatch_is_caught_from_the_samples_without_a_hook(pose_setup):
    """The samples carry each group's keypoint count: the first forward checks the heads."""
    cfg, dataset = pose_setup
    heads = copy.deepcopy(cfg.model.heads)
    heads.animal.out_channels = 20
    model = _model(cfg, heads=heads)
    data = _batch(dataset, 1)
    assert data['data_samples'][0].metainfo['group_num_keypoints'] == dict(person=17, animal=17)
    with pytest.raises(ValueError, match=r'head "animal" predicts 20 outputs but its dataset '
                                         r'"animal" has 17'):
        model.test_step(data)
