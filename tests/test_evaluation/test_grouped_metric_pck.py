"""GroupedMetric with mmpose's PCKAccuracy: hand-made predictions (exact values, equal to
PCKAccuracy run on each group alone), several metrics per group with sampler padding, a
real mmpose val loop with per-group meta; and ClsAccuracy inside GroupedMetric."""
import copy

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import METRICS, DefaultScope
from mmengine.runner import Runner
from mmpose.evaluation.metrics import PCKAccuracy

from mtl_plugin.evaluation.classification import ClsAccuracy

METRICS_CFG = dict(coco=dict(type='PCKAccuracy', thr=0.05),
                   crowdpose=dict(type='PCKAccuracy'))
GROUP_META = dict(coco=dict(dataset_name='coco', num_keypoints=17),
                  crowdpose=dict(dataset_name='crowdpose', num_keypoints=14))


def _pose_sample(group, bbox, offsets, visible=None, seed=0):
    """A PoseDataSample as ``process()`` receives it (dict); prediction = GT + offsets."""
    k = len(offsets)
    gt = np.random.default_rng(seed).uniform(20, 60, (1, k, 2))
    return dict(group_name=group, id=seed,
                gt_instances=dict(keypoints=gt, bboxes=np.array([bbox], dtype=np.float32),
                                  keypoints_visible=(np.ones((1, k)) if visible is None
                                                     else np.asarray([visible], float))),
                pred_instances=dict(keypoints=gt + np.asarray(offsets, float)[None],
                                    keypoint_scores=np.ones((1, k))))


def _samples():
    # coco: bbox size max(100, 50) = 100, thr 0.05 -> within 5 px
    hit, miss = (1.0, 0.0), (10.0, 0.0)
    c1 = _pose_sample('coco', [0, 0, 100, 50], [hit] * 17, seed=1)
    c2 = _pose_sample('coco', [0, 0, 100, 50], [miss] * 5 + [(2.0, 0.0)] * 12,
                      visible=[1] * 16 + [0], seed=2)
    # crowdpose: bbox size max(40, 80) = 80, default thr 0.05 -> within 4 px
    p1 = _pose_sample('crowdpose', [10, 10, 50, 90], [(3.0, 4.0)] * 7 + [(0.0, 2.0)] * 7,
                      seed=3)
    p2 = _pose_sample('crowdpose', [10, 10, 50, 90], [(30.0, 0.0)] * 14, visible=[0] * 14,
                      seed=4)  # nothing visible: counts for nothing
    return [c1, p1, c2, p2]


def _direct(cfg, samples):
    metric = PCKAccuracy(**{k: v for k, v in cfg.items() if k != 'type'})
    metric.process({}, copy.deepcopy(samples))
    return metric.compute_metrics(metric.results)


def test_pck_per_group_equals_pckaccuracy_on_each_subset():
    samples = _samples()
    with DefaultScope.overwrite_default_scope('mmpose'):
        metric = METRICS.build(dict(type='GroupedMetric', metrics=copy.deepcopy(METRICS_CFG)))
        metric.dataset_meta = dict(dataset_name='coco', group_metainfo=GROUP_META)
        for i in range(0, len(samples), 2):  # batches mixing the groups
            metric.process({}, copy.deepcopy(samples[i:i + 2]))
        results = metric.evaluate(len(samples))
    # coco: keypoints 0-4 hit on 1 of 2 samples, 5-15 on 2 of 2, 16 visible once and hit
    assert results['coco/PCK'] == pytest.approx((5 * 0.5 + 12 * 1.0) / 17, abs=1e-12)
    assert results['crowdpose/PCK'] == 0.5  # 7 of 14 keypoints within 4 px
    for group, cfg in METRICS_CFG.items():
        mine = [s for s in samples if s['group_name'] == group]
        assert results[f'{group}/PCK'] == _direct(cfg, mine)['PCK']
    assert results['mean/PCK'] == round((results['coco/PCK'] + 0.5) / 2, 4)
    assert set(results) == {'coco/PCK', 'crowdpose/PCK', 'mean/PCK'}
    assert [m.dataset_meta['num_keypoints'] for m in
            (metric.metrics['coco'][0], metric.metrics['crowdpose'][0])] == [17, 14]


def test_several_metrics_per_group_and_sampler_padding():
    c1, p1, c2, p2 = _samples()
    samples = [c1, c2, p1, p2]
    padded = samples + [copy.deepcopy(c1)]  # a sampler's round-up repeats a sample
    cfgs = dict(coco=[dict(type='PCKAccuracy', thr=0.05),
                      dict(type='PCKAccuracy', thr=0.08, prefix='pck8')],
                crowdpose=[dict(type='PCKAccuracy', thr=0.1, prefix='pck10')])
    with DefaultScope.overwrite_default_scope('mmpose'):
        metric = METRICS.build(dict(type='GroupedMetric', metrics=copy.deepcopy(cfgs)))
        metric.dataset_meta = dict(group_metainfo=GROUP_META)
        metric.process({}, copy.deepcopy(padded))
        results = metric.evaluate(len(samples))  # the padding is cut off
    coco = [s for s in samples if s['group_name'] == 'coco']
    crowd = [s for s in samples if s['group_name'] == 'crowdpose']
    assert results == {'coco/PCK': _direct(cfgs['coco'][0], coco)['PCK'],
                       'coco/pck8/PCK': _direct(cfgs['coco'][1], coco)['PCK'],
                       'crowdpose/pck10/PCK': 1.0}  # 5 px of 80 < 0.1
    assert results['coco/pck8/PCK'] == pytest.approx(14.5 / 17, abs=1e-12)  # 10 px >= 8


class _KeepOutputs(Hook):
    """Keeps the model's val outputs (PoseDataSample) to re-score them directly."""

    def __init__(self):
        self.outputs = []

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.outputs += [o.to_dict() for o in outputs]


def _pose_cfg(root):
    codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)

    def head(k):
        return dict(type='HeatmapHead', in_channels=64, out_channels=k,
                    deconv_out_channels=(16, 16, 16), deconv_kernel_sizes=(4, 4, 4),
                    loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec)

    pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                dict(type='TopdownAffine', input_size=codec['input_size']),
                dict(type='PackPoseInputs')]
    sources = [dict(type=t, group_name=g, data_root=root + '/', data_mode='topdown',
                    ann_file=f'{g}/test_{g}.json', data_prefix=dict(img=f'{g}/'),
                    test_mode=True, pipeline=pipeline)
               for t, g in (('CocoDataset', 'coco'), ('CrowdPoseDataset', 'crowdpose'))]
    model = dict(type='MultiHeadPoseEstimator',
                 data_preprocessor=dict(type='PoseDataPreprocessor'),
                 backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8),
                 heads=dict(coco=head(17), crowdpose=head(14)),
                 test_cfg=dict(flip_test=False))
    loader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                  dataset=dict(type='MultiSourceDataset', datasets=sources))
    # a loose second threshold so that a random model's PCK is not just 0
    metrics = {g: [dict(type='PCKAccuracy', thr=0.05),
                   dict(type='PCKAccuracy', thr=0.5, prefix='loose')] for g in GROUP_META}
    return model, loader, metrics


def test_pck_in_an_mmpose_val_loop(shared_real, tmp_path):
    model, loader, metrics = _pose_cfg(shared_real)
    keep = _KeepOutputs()
    with DefaultScope.overwrite_default_scope('mmpose'):
        runner = Runner(model=model, work_dir=str(tmp_path), val_dataloader=loader,
                        val_cfg=dict(), default_scope='mmpose', custom_hooks=[keep],
                        val_evaluator=dict(type='GroupedMetric', metrics=metrics),
                        default_hooks=dict(checkpoint=None, logger=None),
                        log_level='WARNING', randomness=dict(seed=0))
        results = runner.val()
    grouped = runner.val_evaluator.metrics[0]
    assert [(grouped.metrics[g][0].dataset_meta['dataset_name'],
             grouped.metrics[g][0].dataset_meta['num_keypoints']) for g in GROUP_META] == [
        ('coco', 17), ('crowdpose', 14)]
    groups = [o['group_name'] for o in keep.outputs]
    dataset = runner.val_dataloader.dataset
    sizes = {g: len(dataset.get_group_dataset(g)) for g in GROUP_META}
    assert groups == ['coco'] * sizes['coco'] + ['crowdpose'] * sizes['crowdpose']
    assert sizes['coco'] > 1 and sizes['crowdpose'] > 1  # one sample per person (top-down)
    for group in GROUP_META:
        mine = [o for o in keep.outputs if o['group_name'] == group]
        assert mine[0]['pred_instances']['keypoints'].shape[1] == len(
            mine[0]['gt_instances']['keypoints'][0])
        assert results[f'{group}/PCK'] == _direct(dict(thr=0.05), mine)['PCK']
        assert results[f'{group}/loose/PCK'] == _direct(dict(thr=0.5), mine)['PCK']
    assert results['mean/loose/PCK'] == round(
        (results['coco/loose/PCK'] + results['crowdpose/loose/PCK']) / 2, 4)
    assert results['coco/loose/PCK'] > 0


def _cls_sample(group, gt, scores):
    return dict(group_name=group, gt_label=torch.tensor([gt]), pred_score=torch.tensor(scores))


def test_cls_accuracy_inside_grouped_metric_with_padding():
    samples = [_cls_sample('person', 0, [0.9, 0.1]),         # gold ranked 0
               _cls_sample('animal', 2, [0.1, 0.2, 0.7]),    # 0
               _cls_sample('person', 1, [0.8, 0.2]),         # 1
               _cls_sample('animal', 0, [0.3, 0.5, 0.2]),    # 1
               _cls_sample('animal', 1, [0.3, 0.4, 0.3])]    # 0
    cfgs = dict(person=dict(type='ClsAccuracy'), animal=[dict(type='ClsAccuracy', topk=(1, 2))])
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(dict(type='GroupedMetric', metrics=copy.deepcopy(cfgs)))
        metric.dataset_meta = dict(group_metainfo=dict(person=dict(classes=('a', 'b')),
                                                       animal=dict(classes=('c', 'd', 'e'))))
        metric.process({}, samples[:3])
        metric.process({}, samples[3:] + [copy.deepcopy(samples[0])])  # padding
        results = metric.evaluate(len(samples))
    assert results == {'person/accuracy/top1': 50.0,
                       'animal/accuracy/top1': pytest.approx(200 / 3, abs=1e-12),
                       'animal/accuracy/top2': 100.0,
                       'mean/accuracy/top1': round((50.0 + 200 / 3) / 2, 4)}
    for group, cfg in (('person', cfgs['person']), ('animal', cfgs['animal'][0])):
        direct = ClsAccuracy(**{k: v for k, v in cfg.items() if k != 'type'})
        direct.process({}, [s for s in samples if s['group_name'] == group])
        assert {f'{group}/accuracy/{k}': v for k, v in
                direct.compute_metrics(direct.results).items()}.items() <= results.items()
