"""DataMapHook / DataMapRecorder, the data-map statistics and tools/analysis/data_map.py."""
import csv
import importlib.util
import json
import os
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement, InstanceData

from conftest import PYTHON, REPO, run_tool
from mtl_plugin.analysis.data_map import RegionRule, score_labels
from mtl_plugin.engine.hooks import data_map as dm_module
from mtl_plugin.engine.hooks import data_map_recorder as recorder_module
from mtl_plugin.engine.hooks.data_map import DataMapHook, DataMapRecorder, gold_confidence
from mtl_plugin.models.recording import DataMapRecording
from tiny_models import TEST_CFG, TRAIN_CFG, backbone_neck, retina

TOOL = osp.join(REPO, 'tools', 'analysis', 'data_map.py')
_spec = importlib.util.spec_from_file_location('data_map_tool', TOOL)
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


# ---------------------------------------------------------------------- toy records
def _det(group, img_id, n, labels=None):
    s = DetDataSample(metainfo=dict(group_name=group, img_id=img_id))
    s.gt_instances = InstanceData(labels=torch.tensor(labels or [0] * n),
                                  bboxes=torch.zeros(n, 4))
    return s


def _crop(ann_id, label):
    s = BaseDataElement(metainfo=dict(group_name='animal', img_id=9, ann_id=ann_id))
    s.gt_label = torch.tensor([label])
    return s


# per epoch: (person img 1: 2 instances), (animal img 2: 2 instances), crop ann 77
EPOCHS = [
    ([0.1, 0.9], [0.1, 0.5], [0.05], [False, True], [True, False], [False]),
    ([0.2, 0.8], [0.9, 0.5], [0.70], [True, True], [True, False], [True]),
    ([0.3, 0.7], [0.5, 0.5], [0.05], [True, True], [False, False], [False]),
]


def _write_toy(work_dir, epochs=EPOCHS, duplicate_first=False):
    data_dir = osp.join(work_dir, 'data_map')
    os.makedirs(data_dir, exist_ok=True)
    meta = dict(version=1, label_space='group', classes=['person', 'cat', 'bird'],
                groups=dict(person=dict(classes=['person'], source={}),
                            animal=dict(classes=['cat', 'bird'], source={})))
    with open(osp.join(data_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f)
    rec = DataMapRecorder()
    for e, (p, a, c, pk, ak, ck) in enumerate(epochs, 1):
        samples = [_det('person', 1, 2), _det('animal', 2, 2, [1, 0]), _crop(77, 1)]
        rec.record(samples, [torch.tensor(v) for v in (p, a, c)],
                   [torch.tensor(v) for v in (pk, ak, ck)])
        if duplicate_first and e == 1:  # a padded sampler repeats a sample: mean counts
            rec.record([_det('person', 1, 2)], [torch.tensor([0.3, 0.9])],
                       [torch.tensor([False, True])])
        rows = rec.pop()
        with open(osp.join(data_dir, f'epoch_{e:03d}.npz'), 'wb') as f:
            np.savez_compressed(f, **rows)
    return data_dir


def test_recorder_rows_and_mismatch_flag():
    rec = DataMapRecorder(expected_counts={('person', 'img', '1'): 3})
    rec.record([_det('person', 1, 2, [0, 0]), _crop(77, 1)],
               [torch.tensor([0.25, 0.5]), torch.tensor([0.75])],
               [torch.tensor([True, False]), torch.tensor([True])])
    assert len(rec) == 2 and rec.mismatch_warned
    rows = rec.pop()
    assert rows['group'].tolist() == ['person', 'person', 'animal']
    assert rows['image_id'].tolist() == ['1', '1', '9']
    assert rows['ann_id'].tolist() == [-1, -1, 77]
    assert rows['inst'].tolist() == [0, 1, 0]
    assert rows['label'].tolist() == [0, 0, 1]
    assert rows['mismatch'].tolist() == [True, True, False]
    assert rows['confidence'].tolist() == [0.25, 0.5, 0.75]
    assert rows['correct'].tolist() == [True, False, True]
    assert len(rec) == 0 and len(rec.pop()['confidence']) == 0
    with pytest.raises(ValueError, match='one entry per sample'):
        rec.record([_crop(1, 0)], [], [])
    with pytest.raises(ValueError, match='1-D tensors'):
        rec.record([_crop(1, 0)], [torch.zeros(1, 1)], [torch.zeros(1, 1)])
    with pytest.raises(KeyError, match="add 'img_id'"):
        rec.record([BaseDataElement(metainfo=dict(group_name='x'))], [torch.zeros(1)],
                   [torch.zeros(1, dtype=torch.bool)])


def test_statistics_and_regions_exact(tmp_path):
    data_dir = _write_toy(str(tmp_path), duplicate_first=True)
    table, summary = score_labels(str(tmp_path), sources={})
    got = {(g, i, int(a), int(k)): (c, v, r, reg, int(n)) for g, i, a, k, c, v, r, reg, n in zip(
        table['group'], table['image_id'], table['ann_id'], table['inst'], table['confidence'],
        table['variability'], table['correctness'], table['region'], table['epochs_seen'])}
    std = np.std
    expected = {
        ('person', '1', -1, 0): (0.7 / 3, std([0.2, 0.2, 0.3]), 2 / 3, 'hard-to-learn'),
        ('person', '1', -1, 1): (0.8, std([0.9, 0.8, 0.7]), 1.0, 'easy'),
        ('animal', '2', -1, 0): (0.5, std([0.1, 0.9, 0.5]), 2 / 3, 'ambiguous'),
        ('animal', '2', -1, 1): (0.5, 0.0, 0.0, 'ambiguous'),
        ('animal', '9', 77, 0): (0.8 / 3, std([0.05, 0.7, 0.05]), 1 / 3, 'ambiguous'),
    }
    assert set(got) == set(expected)
    for key, (c, v, r, reg) in expected.items():
        gc, gv, gr, greg, n = got[key]
        assert gc == pytest.approx(c, abs=1e-6) and gv == pytest.approx(v, abs=1e-6)
        assert gr == pytest.approx(r) and greg == reg and n == 3, key
    # epoch 1 holds a duplicate of person image 1: averaged, (0.1 + 0.3) / 2 for inst 0
    assert table['confidence'].tolist() == sorted(table['confidence'].tolist())
    assert summary['regions'] == {'easy': 1, 'ambiguous': 3, 'hard-to-learn': 1}
    assert summary['epochs'] == [1, 2, 3] and summary['ann_id_unresolved'] == 4
    # the CLI writes the same numbers, sorted by confidence, lowest first
    out = tmp_path / 'out'
    assert tool.main([data_dir, '--out-dir', str(out), '--show', '2']) == 0
    with open(out / 'scored_labels.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['image_id', 'ann_id', 'group', 'class', 'confidence', 'variability',
                       'correctness', 'region', 'epochs_seen', 'instance']
    assert rows[1] == ['1', '', 'person', 'person', '0.233333', '0.047140', '0.666667',
                       'hard-to-learn', '3', '0']
    assert rows[2] == ['9', '77', 'animal', 'bird', '0.266667', '0.306413', '0.333333',
                       'ambiguous', '3', '0']
    assert rows[5] == ['1', '', 'person', 'person', '0.800000', '0.081650', '1.000000', 'easy',
                       '3', '1']
    assert sorted((r[3], r[9]) for r in rows[3:5]) == [('bird', '0'), ('cat', '1')]
    assert json.load(open(out / 'summary.json'))['num_labels'] == 5
    assert (out / 'data_map.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_region_rule_configurable():
    conf, var = np.array([0.1, 0.5, 0.7, 0.7]), np.array([0.0, 0.0, 0.1, 0.25])
    assert RegionRule().assign(conf, var).tolist() == ['hard-to-learn', 'ambiguous', 'easy',
                                                       'ambiguous']
    assert RegionRule(0.6, 0.8, 0.3).assign(conf, var).tolist() == [
        'hard-to-learn', 'hard-to-learn', 'ambiguous', 'ambiguous']
    with pytest.raises(Exception, match='hard_confidence <= easy_confidence'):
        RegionRule(0.7, 0.6)


def test_gold_confidence_iou_cases():
    gt = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [70, 70, 80, 80.]])
    labels = torch.tensor([0, 1, 0, 0])
    pred = InstanceData(
        bboxes=torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10],     # gold 0.6, other class 0.9
                             [20, 20, 30, 35], [25, 20, 35, 30],  # IoU 0.667 / 0.333
                             [70, 70, 80, 75.]]),                 # IoU exactly 0.5
        scores=torch.tensor([0.6, 0.9, 0.3, 0.8, 0.45]),
        labels=torch.tensor([0, 1, 1, 1, 0]))
    conf, correct = gold_confidence(pred, gt, labels, iou_thr=0.5)
    assert conf.tolist() == pytest.approx([0.6, 0.3, 0.0, 0.45])
    assert correct.tolist() == [False, True, False, True]
    empty = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                         labels=torch.zeros(0, dtype=torch.long))
    conf, correct = gold_confidence(empty, gt, labels)
    assert conf.tolist() == [0, 0, 0, 0] and correct.tolist() == [False] * 4
    conf, correct = gold_confidence(pred, torch.zeros(0, 4), labels[:0])
    assert conf.shape == (0,) and correct.shape == (0,)


# ---------------------------------------------------------------------- Runner runs
def _with_crowd(root, tmp_path):
    """person_train.json with a crowd box inserted among image 1's annotations."""
    ann = json.load(open(osp.join(root, 'annotations', 'person_train.json')))
    first = next(i for i, a in enumerate(ann['annotations']) if a['image_id'] == 1)
    crowd = dict(ann['annotations'][first], id=10_000, iscrowd=1)
    ann['annotations'].insert(first + 1, crowd)
    path = str(tmp_path / 'person_train_crowd.json')
    with open(path, 'w') as f:
        json.dump(ann, f)
    return path


def _loader(root, person_ann):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(64, 64), keep_ratio=True),
                dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]
    sources = [dict(type='CocoDataset', group_name=name, data_root=root + '/', ann_file=ann,
                    data_prefix=dict(img=f'images/{name}/'), metainfo=dict(classes=classes),
                    filter_cfg=dict(filter_empty_gt=True), indices=4, pipeline=pipeline)
               for name, classes, ann in (('person', ('person', ), person_ann),
                                          ('animal', ('cat', 'bird'),
                                           'annotations/animal_train.json'))]
    return dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                dataset=dict(type='MultiSourceDataset', datasets=sources))


def _runner(root, person_ann, work_dir, max_epochs, resume=False):
    model = dict(type='MultiHeadDetector', **backbone_neck(),
                 heads=dict(person=retina(1), animal=retina(2)), train_cfg=TRAIN_CFG,
                 test_cfg=TEST_CFG)
    return Runner(
        model=model, work_dir=str(work_dir), default_scope='mmdet', log_level='WARNING',
        train_dataloader=_loader(root, person_ann),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        custom_hooks=[dict(type='HeadIsolationHook'), dict(type='DataMapHook')],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        resume=resume, randomness=dict(seed=0))


def _expected_ann_ids(root, person_ann):
    """Non-crowd annotation ids of the 4 first non-empty images of each source."""
    out = {}
    for group, path in (('person', person_ann),
                        ('animal', osp.join(root, 'annotations', 'animal_train.json'))):
        ann = json.load(open(path))
        by_img = {}
        for a in ann['annotations']:
            by_img.setdefault(a['image_id'], []).append(a)
        imgs = [i['id'] for i in ann['images'] if by_img.get(i['id'])][:4]
        out[group] = {str(i): [a['id'] for a in by_img[i] if not a['iscrowd']] for i in imgs}
    return out


@pytest.mark.slow
def test_runner_records_every_instance_and_resumes(synthetic_root, tmp_path):
    person_ann = _with_crowd(synthetic_root, tmp_path)
    work = tmp_path / 'work'
    with DefaultScope.overwrite_default_scope('mmdet'):
        _runner(synthetic_root, person_ann, work, max_epochs=1).train()
    data_dir = work / 'data_map'
    first = (data_dir / 'epoch_001.npz').read_bytes()
    (data_dir / 'epoch_005.npz').write_bytes(b'stale')  # left by an abandoned longer run
    with DefaultScope.overwrite_default_scope('mmdet'):
        _runner(synthetic_root, person_ann, work, max_epochs=2, resume=True).train()
    assert sorted(os.listdir(data_dir)) == ['epoch_001.npz', 'epoch_002.npz', 'meta.json']
    assert (data_dir / 'epoch_001.npz').read_bytes() == first
    meta = json.load(open(data_dir / 'meta.json'))
    assert meta['groups']['person']['source']['ann_file'] == person_ann
    assert meta['groups']['animal']['classes'] == ['cat', 'bird']
    expected = _expected_ann_ids(synthetic_root, person_ann)
    assert 10_000 not in expected['person'][next(iter(expected['person']))]
    table, summary = score_labels(str(work))
    for epoch in (1, 2):
        rows = np.load(data_dir / f'epoch_{epoch:03d}.npz')
        got = sorted(zip(rows['group'].tolist(), rows['image_id'].tolist(),
                         rows['inst'].tolist()))
        want = sorted((g, i, j) for g, imgs in expected.items() for i, ids in imgs.items()
                      for j in range(len(ids)))
        assert got == want  # every GT instance once per epoch
        assert not rows['mismatch'].any()
        assert ((rows['confidence'] >= 0) & (rows['confidence'] <= 1)).all()
    for g, i, j, a, n in zip(table['group'], table['image_id'], table['inst'], table['ann_id'],
                             table['epochs_seen']):
        assert a == expected[g][i][j] and n == 2
    assert summary['ann_id_unresolved'] == 0
    out = tmp_path / 'report'
    run_tool([PYTHON, TOOL, str(work), '--out-dir', str(out)])
    with open(out / 'scored_labels.csv') as f:
        csv_ids = sorted(int(r['ann_id']) for r in csv.DictReader(f))
    assert csv_ids == sorted(a for imgs in expected.values() for ids in imgs.values()
                             for a in ids)
    # the annotation files of a config (when they moved) give the same table
    cfg_path = str(tmp_path / 'cfg.py')
    Config(dict(train_dataloader=_loader(synthetic_root, person_ann))).dump(cfg_path)
    assert tool.main([str(work), '--config', cfg_path, '--out-dir', str(tmp_path / 'r2')]) == 0
    assert (tmp_path / 'r2' / 'scored_labels.csv').read_bytes() == \
        (out / 'scored_labels.csv').read_bytes()


def test_hook_refuses_a_model_without_recording(tmp_path):
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(dict(type='RetinaNet', **backbone_neck(), bbox_head=retina(1),
                                  train_cfg=TRAIN_CFG, test_cfg=TEST_CFG))
    runner = SimpleNamespace(model=model)
    with pytest.raises(TypeError, match='RetinaNet does not.*MultiHeadDetector.*'
                       'HierarchicalClassifier'):
        DataMapHook().before_train(runner)


class _FakeModel(DataMapRecording):
    """What the hook needs of a model: ``recording(recorder)``."""


def test_hook_loop_checks():
    model = _FakeModel()
    iter_loop = SimpleNamespace(model=model, train_loop=object())
    with pytest.raises(ValueError, match='give period_iters'):
        DataMapHook().before_train(iter_loop)
    epoch_loop = SimpleNamespace(model=model,
                                 train_loop=dm_module.EpochBasedTrainLoop.__new__(
                                     dm_module.EpochBasedTrainLoop))
    with pytest.raises(ValueError, match='period_iters is for IterBasedTrainLoop'):
        DataMapHook(period_iters=4).before_train(epoch_loop)


@pytest.mark.parametrize('kwargs, match', [
    (dict(interval=0), 'interval must be an int >= 1'),
    (dict(max_samples=-1), 'max_samples must be an int >= 1 or None'),
    (dict(iou_thr=0), r'iou_thr must be in \(0, 1\]'),
    (dict(score_thr=1.0), r'score_thr must be in \[0, 1\)'),
    (dict(out_dir=''), 'out_dir must be a non-empty'),
])
def test_hook_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataMapHook(**kwargs)


def test_cli_help_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        tool.main(['--help'])
    assert exc.value.code == 0 and '--out-dir' in capsys.readouterr().out
    assert tool.main([str(tmp_path), '--out-dir', str(tmp_path / 'o')]) == 2
    assert 'no data map files' in capsys.readouterr().err
    assert tool.main([str(tmp_path / 'nope'), '--out-dir', str(tmp_path / 'o')]) == 2
    assert 'work dir not found' in capsys.readouterr().err
    _write_toy(str(tmp_path), epochs=EPOCHS[:1])
    assert tool.main([str(tmp_path), '--out-dir', str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'at least 2 recorded epochs' in err and 'has 1' in err
    _write_toy(str(tmp_path))
    assert tool.main([str(tmp_path), '--out-dir', str(tmp_path / 'o'),
                      '--hard-confidence', '0.9']) == 2
    assert 'hard_confidence <= easy_confidence' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'o')
    meta_path = tmp_path / 'data_map' / 'meta.json'
    meta = json.load(open(meta_path))
    meta['groups']['person']['source'] = dict(type='mmdet.datasets.CocoDataset',
                                              ann_file=str(tmp_path / 'gone.json'))
    meta_path.write_text(json.dumps(meta))
    assert tool.main([str(tmp_path), '--out-dir', str(tmp_path / 'o')]) == 2
    assert 'gone.json' in capsys.readouterr().err and not osp.exists(tmp_path / 'o')


def test_predict_cfg_is_light_and_cached():
    rec = DataMapRecorder(score_thr=0.01, max_per_img=100, nms_pre=200)
    head_cfg = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, max_per_img=300,
                    nms=dict(type='nms', iou_threshold=0.6))
    cfg = rec.predict_cfg(head_cfg)
    assert dict(cfg) == dict(nms_pre=200, min_bbox_size=0, score_thr=0.01, max_per_img=100,
                             nms=dict(type='nms', iou_threshold=0.6))
    assert rec.predict_cfg(head_cfg) is cfg and head_cfg['score_thr'] == 0.05
    assert rec.predict_cfg(None).nms_pre == 200 and rec.predict_cfg(None).nms.iou_threshold == 0.5


@pytest.mark.parametrize('union', [False, True])
def test_detector_records_each_gt_in_group_labels(union):
    from tiny_models import META, batch, build_detector
    kw = dict(heads=dict(all=retina(3)), group_to_head=dict(person='all', animal='all')) \
        if union else {}
    model = build_detector(**kw)
    model.dataset_meta = META
    model.train()
    rec = DataMapRecorder()
    data = model.data_preprocessor(batch(['person', 'animal', 'person']), True)
    want = [(s.group_name, str(s.img_id), j, int(lab)) for s in data['data_samples']
            for j, lab in enumerate(s.gt_instances.labels)]
    with model.recording(rec):
        losses = model(**data, mode='loss')
    assert any(k.endswith('loss_cls') for k in losses)
    rows = rec.pop()
    got = sorted(zip(rows['group'].tolist(), rows['image_id'].tolist(), rows['inst'].tolist(),
                     rows['label'].tolist()))
    assert got == sorted(want)  # labels stay in each group's own space
    assert model.data_map_recorder is None  # outside the block
    model(**data, mode='loss')
    assert len(rec) == 0


def _fake_runner(tmp_path, loop, dataset=None, epoch=0, it=0):
    from mmengine.logging import MMLogger
    return SimpleNamespace(model=_FakeModel(), train_loop=loop,
                           train_dataloader=SimpleNamespace(dataset=dataset or SimpleNamespace()),
                           work_dir=str(tmp_path), epoch=epoch, iter=it,
                           logger=MMLogger.get_current_instance())


def test_iteration_periods_interval_and_partial_period(tmp_path):
    hook = DataMapHook(period_iters=2, interval=2)
    runner = _fake_runner(tmp_path, loop=object())
    hook.before_train(runner)
    seen = []
    for it in range(9):  # periods 1..4 complete, period 5 partial
        runner.iter = it
        hook.before_train_iter(runner, it)
        rec = runner.model.data_map_recorder
        seen.append(rec is not None)
        if rec is not None:
            rec.record([_det('person', it, 1)], [torch.tensor([it / 10])],
                       [torch.tensor([True])])
        hook.after_train_iter(runner, it)
    hook.after_train(runner)
    assert seen == [False, False, True, True, False, False, True, True, False]
    assert runner.model.data_map_recorder is None
    assert sorted(os.listdir(tmp_path / 'data_map')) == ['epoch_002.npz', 'epoch_004.npz',
                                                         'meta.json']
    rows = np.load(tmp_path / 'data_map' / 'epoch_004.npz')
    assert rows['image_id'].tolist() == ['6', '7']
    assert rows['confidence'].tolist() == pytest.approx([0.6, 0.7])
    meta = json.load(open(tmp_path / 'data_map' / 'meta.json'))
    assert meta['clock'] == 'iter' and meta['period_iters'] == 2


def test_max_samples_subset_and_expected_counts(synthetic_root, tmp_path):
    from mtl_plugin.datasets import MultiSourceDataset
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = MultiSourceDataset([
            dict(type='CocoDataset', group_name=g, data_root=synthetic_root + '/',
                 ann_file=f'annotations/{g}_train.json', data_prefix=dict(img=f'images/{g}/'),
                 metainfo=dict(classes=c), pipeline=[])
            for g, c in (('person', ('person', )), ('animal', ('cat', 'bird')))])
    loop = dm_module.EpochBasedTrainLoop.__new__(dm_module.EpochBasedTrainLoop)
    hook = DataMapHook(max_samples=5, seed=1)
    hook.before_train(_fake_runner(tmp_path, loop, dataset))
    subset = hook.recorder.subset
    assert len(subset) == 5 and all(k[1] == 'img' for k in subset)
    ann = json.load(open(osp.join(synthetic_root, 'annotations', 'animal_train.json')))
    img = ann['images'][0]['id']
    n = sum(a['image_id'] == img for a in ann['annotations'])
    assert hook.recorder.expected_counts[('animal', 'img', str(img))] == n
    assert len(hook.recorder.expected_counts) == len(dataset)
    again = DataMapHook(max_samples=5, seed=1)
    again.before_train(_fake_runner(tmp_path, loop, dataset))
    assert again.recorder.subset == subset  # the same on every rank
    # a sample outside the subset is not recorded
    outside = next(k for k in hook.recorder.expected_counts if k not in subset)
    hook.recorder.record([_det(outside[0], int(outside[2]), 1)], [torch.ones(1)],
                         [torch.ones(1, dtype=torch.bool)])
    assert len(hook.recorder) == 0


def test_recorder_moves_values_in_chunks(monkeypatch):
    monkeypatch.setattr(recorder_module, 'COMPACT', 3)
    rec = DataMapRecorder()
    for i in range(7):
        rec.record([_det('person', i, 2)], [torch.tensor([i / 10, 0.5])],
                   [torch.tensor([True, False])])
    assert len(rec._chunks) == 2 and len(rec._values) == 1 and len(rec) == 7
    rows = rec.pop()
    assert rows['confidence'].tolist() == pytest.approx(
        [v for i in range(7) for v in (i / 10, 0.5)])
    assert rows['image_id'].tolist() == [str(i) for i in range(7) for _ in range(2)]
    assert rows['inst'].tolist() == [0, 1] * 7 and len(rec._chunks) == 0
