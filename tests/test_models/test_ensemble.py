import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, MODELS, init_default_scope

from conftest import PYTHON, REPO, run_tool

MEMBER = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-{}.py')
ENSEMBLE = 'configs/group_boost/ensemble_retinanet_r18_fpn_synthetic.py'


@pytest.fixture(scope='module')
def members(tmp_path_factory):
    init_default_scope('mmdet')
    out = {}
    for i, group in enumerate(('person', 'animal')):
        cfg = Config.fromfile(MEMBER.format(group))
        cfg.model.test_cfg.score_thr = 0.0
        torch.manual_seed(i)
        model = MODELS.build(cfg.model)
        model.init_weights()
        path = str(tmp_path_factory.mktemp('ckpt') / f'{group}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta={}), path)
        out[group] = (MEMBER.format(group), path, model.eval())
    return out


@pytest.mark.slow
def test_each_sample_is_predicted_by_its_group_model(members, synthetic_root):
    ens = MODELS.build(dict(type='GroupRoutedEnsemble', models={
        g: dict(config=c, checkpoint=p) for g, (c, p, _) in members.items()}))
    ens.eval()
    for member in ens.members.values():
        member.bbox_head.test_cfg.score_thr = 0.0
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/synthetic_det.py'))
    ds_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    for src in ds_cfg.datasets:
        src.data_root = synthetic_root + '/'
    ds = DATASETS.build(ds_cfg)
    order = [0, 10, 1, 11]  # person, animal, person, animal (8 per source)
    batch = pseudo_collate([ds[i] for i in order])
    with torch.no_grad():
        out = ens.test_step(copy.deepcopy(batch))
        for group, positions in (('person', [0, 2]), ('animal', [1, 3])):
            sub = dict(inputs=[batch['inputs'][i] for i in positions],
                       data_samples=[copy.deepcopy(batch['data_samples'][i]) for i in positions])
            direct = members[group][2].test_step(sub)
            for pos, ref in zip(positions, direct):
                assert out[pos].group_name == group and out[pos].pred_label_space == 'group'
                assert torch.equal(out[pos].pred_instances.bboxes, ref.pred_instances.bboxes)
                assert out[pos].pred_instances.labels.max() < (1 if group == 'person' else 2)


@pytest.mark.slow
def test_ensemble_through_tools_test(members, synthetic_root):
    opts = [f'model.models.{g}.checkpoint={p}' for g, (_, p, _) in members.items()] + \
        [f'test_dataloader.dataset.datasets.{i}.data_root={synthetic_root}/' for i in (0, 1)] + \
        [f'test_evaluator.metrics.{g}.ann_file={synthetic_root}/annotations/{g}_val.json'
         for g in ('person', 'animal')]
    res = run_tool([PYTHON, 'tools/test.py', ENSEMBLE, '--cfg-options', *opts])
    log = res.stdout + res.stderr
    assert 'Epoch(test)' in log


def test_ensemble_errors(members, tmp_path):
    init_default_scope('mmdet')
    with pytest.raises(TypeError, match='models=dict'):
        MODELS.build(dict(type='GroupRoutedEnsemble', models={}))
    with pytest.raises(FileNotFoundError, match=r'models\["person"\]: config not found'):
        MODELS.build(dict(type='GroupRoutedEnsemble', models=dict(
            person=dict(config=str(tmp_path / 'nope.py')))))
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        MODELS.build(dict(type='GroupRoutedEnsemble', models=dict(
            person=dict(config=members['person'][0], checkpoint=str(tmp_path / 'x.pth')))))
    with pytest.raises(ValueError, match='inference-only'):
        MODELS.build(dict(type='GroupRoutedEnsemble', models=dict(
            person=dict(config=members['person'][0]))))(None, None, mode='loss')
