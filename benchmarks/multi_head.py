"""Benchmark the multi-head detector (issue: multi-head detector, item 9).

Speed (one process, alternating A/B/C, medians):
  * train step: 2 heads on a mixed batch vs one single-head detector of the same head on
    the same batch (goal <= 1.10x) vs "all heads on all samples, losses masked" (goal: faster);
  * inference: one 2-head model vs two separate single-head detectors on the same images
    (goal >= 1.6x), next to the limit (2B+2H)/(B+2H) measured in the same run.
Accuracy on generated partial-label data (each source's images also hold unlabelled objects
of the other's classes), same total iterations per method (separate detectors: half each):
multi-head vs partitioned heads vs naive / masked union head vs two separate detectors,
per-class AP on a fully labelled mixed test set, mean ± std over ``--seeds`` (data fixed).
Usage:
    python benchmarks/multi_head.py                 # speed + accuracy (shifted + shared look)
    python benchmarks/multi_head.py --skip-speed --looks shifted --seeds 0 1 2 [--merge]
    python benchmarks/multi_head.py --skip-speed --seeds 1 --out part1.json   # one per core,
    python benchmarks/multi_head.py --combine part0.json part1.json --out all.json  # merged
"""
import argparse
import copy
import json
import os.path as osp
import sys
import tempfile

import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, METRICS, MODELS, init_default_scope
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import mtl_plugin  # noqa: E402,F401
from common import (aggregate, compare, paired_stats, print_table,  # noqa: E402
                    save_sections, settings_mismatch, stats_by_row, time_alternating)
from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py')
CLASSES = dict(person=('person', ), animal=('cat', 'bird'))
UNION = ('person', 'cat', 'bird')


# ---------------------------------------------------------------------------- models
def retina_head(num_classes, ch=256, convs=4):
    return dict(type='RetinaHead', num_classes=num_classes, in_channels=ch, feat_channels=ch,
                stacked_convs=convs,
                anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                      scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                      strides=[8, 16, 32, 64, 128]),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4,
                                target_stds=[1.0] * 4),
                loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25),
                loss_bbox=dict(type='L1Loss'))


def rtmdet_head(num_classes):
    return dict(type='RTMDetSepBNHead', num_classes=num_classes, in_channels=96,
                stacked_convs=2, feat_channels=96,
                anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
                bbox_coder=dict(type='DistancePointBBoxCoder'),
                loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=2.0), with_objectness=False,
                exp_on_reg=False, share_conv=True, pred_kernel_size=1,
                norm_cfg=dict(type='BN'), act_cfg=dict(type='SiLU', inplace=True))


ARCH = dict(
    retinanet=dict(
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3), norm_eval=False),
        neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=256,
                  start_level=1, add_extra_convs='on_input', num_outs=5),
        head=retina_head,
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                     min_pos_iou=0, ignore_iof_thr=-1),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                       debug=False),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)),
    rtmdet_tiny=dict(
        backbone=dict(type='CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=0.167,
                      widen_factor=0.375, channel_attention=True, norm_cfg=dict(type='BN'),
                      act_cfg=dict(type='SiLU', inplace=True)),
        neck=dict(type='CSPNeXtPAFPN', in_channels=[96, 192, 384], out_channels=96,
                  num_csp_blocks=1, expand_ratio=0.5, norm_cfg=dict(type='BN'),
                  act_cfg=dict(type='SiLU', inplace=True)),
        head=rtmdet_head,
        train_cfg=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13),
                       allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.65), max_per_img=100)),
)
PREPROCESS = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                  std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32)


def _neck(arch, head_kw):
    neck = dict(ARCH[arch]['neck'])
    if head_kw and 'ch' in head_kw:
        neck['out_channels'] = head_kw['ch']
    return neck


def multi_head_cfg(arch, head_kw=None):
    a = ARCH[arch]
    kw = head_kw or {}
    return dict(type='MultiHeadDetector', data_preprocessor=PREPROCESS, backbone=a['backbone'],
                neck=_neck(arch, head_kw), heads=dict(person=a['head'](1, **kw), animal=a['head'](2, **kw)),
                head_classes=CLASSES, train_cfg=a['train_cfg'], test_cfg=a['test_cfg'])


def single_cfg(arch, num_classes, head_kw=None):
    a = ARCH[arch]
    kind = 'RetinaNet' if arch == 'retinanet' else 'RTMDet'
    return dict(type=kind, data_preprocessor=PREPROCESS, backbone=a['backbone'],
                neck=_neck(arch, head_kw),
                bbox_head=a['head'](num_classes, **(head_kw or {})), train_cfg=a['train_cfg'],
                test_cfg=a['test_cfg'])


def build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(copy.deepcopy(cfg)))  # heads read cfgs by attribute
    model.init_weights()
    return model


# ---------------------------------------------------------------------------- speed
def fake_batch(groups, size, seed=0, unified=False):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i, group in enumerate(groups):
        inputs.append(torch.randint(0, 255, (3, size, size), generator=g, dtype=torch.uint8))
        xy = torch.rand(3, 2, generator=g) * size * 0.6
        wh = 16 + torch.rand(3, 2, generator=g) * size * 0.3
        labels = torch.randint(0, len(CLASSES[group]), (3, ), generator=g)
        if unified:
            labels = labels + (1 if group == 'animal' else 0)
        s = DetDataSample(metainfo=dict(group_name=group, img_shape=(size, size),
                                        ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                        img_id=i))
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1), labels=labels)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def all_heads_masked_step(model, wrapper, data):
    """The naive alternative: every head on every sample, foreign losses multiplied by 0."""
    data = model.data_preprocessor(data, True)
    x = model.extract_feat(data['inputs'])
    total = 0
    for name, head in model.heads.items():
        samples = copy.deepcopy(data['data_samples'])
        for s in samples:  # labels clamped into the head's range; masked out below anyway
            s.gt_instances.labels = s.gt_instances.labels.clamp(max=head.num_classes - 1)
        losses = head.loss(x, samples)
        own = sum(s.group_name == name for s in samples) / len(samples)
        total = total + own * model.parse_losses(losses)[0]
    wrapper.update_params(total)


def bench_speed(arch, size, batch_size, repeats):
    init_default_scope('mmdet')
    head_kw = dict(ch=256, convs=4) if arch == 'retinanet' else None
    multi = build(multi_head_cfg(arch, head_kw))
    multi.dataset_meta = dict(classes=UNION)
    single = build(single_cfg(arch, 3, head_kw))
    sep_person, sep_animal = build(single_cfg(arch, 1, head_kw)), build(single_cfg(arch, 2, head_kw))
    groups = ['person', 'animal'] * (batch_size // 2)
    batch, batch_u = fake_batch(groups, size), fake_batch(groups, size, unified=True)
    opt = dict(optimizer=dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4))
    w_multi, w_single = build_optim_wrapper(multi, opt), build_optim_wrapper(single, opt)
    masked = build(multi_head_cfg(arch, head_kw))
    w_masked = build_optim_wrapper(masked, opt)
    for m in (multi, single, masked):
        m.train()
    train = time_alternating(dict(
        multi_head=lambda: multi.train_step(copy.deepcopy(batch), w_multi),
        single_head=lambda: single.train_step(copy.deepcopy(batch_u), w_single),
        all_heads_masked=lambda: all_heads_masked_step(masked, w_masked, copy.deepcopy(batch)),
    ), repeats=repeats)
    for m in (multi, sep_person, sep_animal):
        m.eval()
    infer_batch = fake_batch(['person', 'animal'], size)
    pre = multi.data_preprocessor(copy.deepcopy(infer_batch), False)

    def two_detectors():
        sep_person.test_step(copy.deepcopy(infer_batch))
        sep_animal.test_step(copy.deepcopy(infer_batch))

    with torch.no_grad():
        infer = time_alternating(dict(
            two_head_model=lambda: multi.test_step(copy.deepcopy(infer_batch)),
            two_detectors=two_detectors,
            backbone_neck=lambda: multi.extract_feat(pre['inputs']),
        ), repeats=repeats)
    b, full = infer['backbone_neck'], infer['two_head_model']
    h = (full - b) / 2  # one head (incl. its post-processing)
    return dict(
        arch=arch, size=size, batch=batch_size, train_s=train, infer_s=infer,
        train_ratio_vs_single=train['multi_head'] / train['single_head'],
        train_ratio_vs_all_heads_masked=train['multi_head'] / train['all_heads_masked'],
        infer_speedup_vs_two_detectors=infer['two_detectors'] / infer['two_head_model'],
        infer_speedup_limit=(2 * b + 2 * h) / (b + 2 * h))


# ---------------------------------------------------------------------------- accuracy
def source(root, name, pipeline, split='train', test_mode=False):
    return dict(type='CocoDataset', group_name=name, data_root=root,
                ann_file=f'annotations/{name}_{split}.json',
                data_prefix=dict(img=f'images/{name}/'), metainfo=dict(classes=CLASSES[name]),
                filter_cfg=None if test_mode else dict(filter_empty_gt=True, min_size=4),
                test_mode=test_mode, pipeline=pipeline)


def train_model(model_cfg, root, groups, iters, work_dir, label_space='group', seed=0):
    base = Config.fromfile(DEMO)
    cfg = Config(dict(
        default_scope='mmdet', model=model_cfg, work_dir=work_dir,
        train_dataloader=dict(
            batch_size=8, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(type='MultiSourceDataset', label_space=label_space,
                         datasets=[source(root, g, base.train_pipeline) for g in groups])),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                           clip_grad=dict(max_norm=10)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=50)],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=100),
                           checkpoint=dict(type='CheckpointHook', interval=iters + 1)),
        custom_hooks=[dict(type='HeadIsolationHook')] if 'Multi' in model_cfg['type'] else [],
        randomness=dict(seed=seed), log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner.model


def predict(model, root, test_pipeline):
    ds = DATASETS.build(dict(type='CocoDataset', data_root=root,
                             ann_file='annotations/test_full.json',
                             data_prefix=dict(img='images/test/'), metainfo=dict(classes=UNION),
                             test_mode=True, pipeline=test_pipeline))
    model.eval()
    if hasattr(model, 'head_classes'):
        model.dataset_meta = ds.metainfo
    out = []
    with torch.no_grad():
        for i in range(0, len(ds), 8):
            out += model.test_step(pseudo_collate([ds[j] for j in range(i, min(i + 8, len(ds)))]))
    return out


def evaluate(samples, root):
    metric = METRICS.build(dict(type='CocoMetric', ann_file=osp.join(
        root, 'annotations/test_full.json'), classwise=True))
    metric.dataset_meta = dict(classes=UNION)
    metric.process({}, [s.to_dict() for s in samples])
    res = metric.evaluate(len(samples))
    return {k.replace('coco/', ''): round(100 * v, 1) for k, v in res.items()
            if k.endswith(('bbox_mAP', '_precision'))}


METHODS = ('multi_head', 'partitioned', 'partitioned_own_last', 'naive_union', 'masked_union',
           'separate_detectors')
METRICS_SHOWN = ['bbox_mAP', 'person_precision', 'cat_precision', 'bird_precision']
LIGHT = dict(ch=64, convs=2)


def make_data(look: str, num_train: int, work: str) -> str:
    """Generate one look's data (fixed per look: seed 1 whatever the training seed)."""
    root = osp.join(work, f'data_{look}')
    generate_multi_source(root, GeneratorConfig(num_train=num_train, num_val=0, num_test=200,
                                                shared_look=(look == 'shared'), seed=1))
    return root


def method_cfg(method: str) -> dict:
    """The model config of a one-model method (``separate_detectors`` is two models)."""
    if method == 'multi_head':
        return multi_head_cfg('retinanet', LIGHT)
    if method == 'partitioned':  # shared towers, per-head cls and box outputs (issue 14)
        return dict(multi_head_cfg('retinanet', LIGHT), partition_heads=dict(share_box=False))
    if method == 'partitioned_own_last':  # the same, each head keeps its last tower convs
        return dict(multi_head_cfg('retinanet', LIGHT),
                    partition_heads=dict(share_box=False, shared_convs=LIGHT['convs'] - 1))
    if method == 'naive_union':
        return single_cfg('retinanet', 3, LIGHT)
    if method == 'masked_union':
        return dict(multi_head_cfg('retinanet', LIGHT), heads=dict(union=retina_head(3, **LIGHT)),
                    head_classes=dict(union=UNION),
                    group_to_head=dict(person='union', animal='union'))
    raise KeyError(f'method_cfg: unknown method {method!r}; known: {list(METHODS)}')


def bench_accuracy(look: str, root: str, iters: int, seed: int, work: str,
                   methods=METHODS) -> dict:
    """Per-class AP of every method for one training seed; data fixed per look.

    Equal compute: every method gets ``iters`` training iterations in total (batch 8), so
    ``separate_detectors`` trains each of its two detectors for ``iters // 2``.
    """
    test_pipeline = Config.fromfile(DEMO).test_pipeline
    rows = {}
    for method in methods:
        tag = osp.join(work, f'{look}_{method}_s{seed}')
        if method == 'separate_detectors':
            rows[method] = separate_detectors(root, iters // 2, seed, tag, test_pipeline)
        else:
            model = train_model(method_cfg(method), root, ['person', 'animal'], iters, tag,
                                label_space='unified' if method == 'naive_union' else 'group',
                                seed=seed)
            rows[method] = evaluate(predict(model, root, test_pipeline), root)
        print(f'[{look} seed {seed}] {method}: {rows[method]}', flush=True)
    return rows


def separate_detectors(root, iters, seed, tag, test_pipeline):
    """One single-head detector per source, predictions merged into the union space."""
    preds = {}
    for group in ('person', 'animal'):
        model = train_model(single_cfg('retinanet', len(CLASSES[group]), LIGHT), root, [group],
                            iters, f'{tag}_{group}', seed=seed)
        preds[group] = predict(model, root, test_pipeline)
    for p, a in zip(preds['person'], preds['animal']):  # merge into the union label space
        a.pred_instances.labels = a.pred_instances.labels + 1
        p.pred_instances = p.pred_instances.cat([p.pred_instances, a.pred_instances])
    return evaluate(preds['person'], root)


PARTITIONED = dict(partitioned='partition_vs_full', partitioned_own_last='own_last_vs_full')


def partition_verdict(per_seed: dict, margin: float = 1.0, method: str = 'partitioned') -> dict:
    """Partitioned (``method``) vs full heads per metric over the seeds that have both:
    within ``margin`` points (or better), and whether the difference is inside 2 std
    (paired per-seed differences; the verdict on the larger of the two stds is given too)."""
    out = {}
    for metric in METRICS_SHOWN:  # a metric is missing when nothing was detected
        pair = paired_stats(per_seed, 'multi_head', method, metric)
        if pair is None:
            continue
        paired = compare(*pair, paired=True)
        out[metric] = dict(paired, n=pair[0]['n'], within_margin=paired['diff'] >= -margin,
                           margin=margin, larger_std=compare(*pair, paired=False))
    return out


def migrate(path: str) -> None:
    """Rewrite a results file of the one-seed layout (top-level ``date`` / ``machine``,
    ``speed`` list, ``accuracy`` look -> rows) into per-section stamps, the old accuracy
    rows kept as one-seed stats."""
    if not osp.exists(path):
        return
    with open(path) as f:
        old = json.load(f)
    if not isinstance(old.get('speed'), list):
        return
    stamp = dict(date=old.get('date'), machine=old.get('machine'))
    note = (f'one seed (seed 0), measured {old.get("date")} with 2 torch threads; '
            'separate_detectors trained each detector for the full iters (2x the compute)')
    looks = {look: dict(seeds=[0], note=note, stats=aggregate([rows]))
             for look, rows in old.get('accuracy', {}).items()}
    new = dict(speed=dict(stamp, settings=old.get('settings'), results=old['speed']),
               accuracy=dict(stamp, settings=old.get('settings'), looks=looks))
    with open(path, 'w') as f:
        json.dump(new, f, indent=1)


def print_accuracy(look: str, res: dict) -> None:
    print_table(f'accuracy, {look} look (AP x100 on the fully labelled mixed test set, mean ± std '
                'over seeds)', [dict(method=m, **r) for m, r in res['stats'].items()],
                ['method', 'seeds'] + METRICS_SHOWN)
    cols = ['diff', 'noise', 'n', 'verdict', 'within_margin']
    for method, key in PARTITIONED.items():
        if res.get(key):
            print_table(f'{method} - full heads (noise: 2 std of paired differences)',
                        [dict(metric=k, **v) for k, v in res[key].items()], ['metric'] + cols)


def summarise(per_seed: dict) -> dict:
    """One look's entry of the results: per-seed rows, stats per method over the seeds it
    has, the partitioned-vs-full verdict."""
    res = dict(seeds=sorted(int(s) for s in per_seed), per_seed=per_seed,
               stats=stats_by_row(per_seed, [m for m in METHODS if any(
                   m in t for t in per_seed.values())]))
    for method, key in PARTITIONED.items():
        if method == 'partitioned' or any(method in t for t in per_seed.values()):
            res[key] = partition_verdict(per_seed, method=method)
    return res


def run_accuracy(args) -> None:
    """Train every method per seed, saving after every model; with ``--merge``, the seeds
    and methods of an earlier run of the same settings are kept, not rerun (a run split in
    parts)."""
    settings = dict(iters_total_per_method=args.iters, batch_size=8, img_size=128,
                    num_train=args.num_train, num_test=200, data_seed=1,
                    torch_threads=torch.get_num_threads(),
                    note='data fixed per look (generator seed 1); the seed drives model init '
                         'and sampling; separate_detectors: iters // 2 per detector')
    migrate(args.out)
    old = {}
    if osp.exists(args.out):
        with open(args.out) as f:
            old = json.load(f).get('accuracy', {})
    looks = old.get('looks', {})
    if args.merge and old.get('settings', {}).get('iters_total_per_method') not in (
            None, args.iters):
        raise ValueError(f'--merge: {args.out} was measured with iters_total_per_method='
                         f'{old["settings"]["iters_total_per_method"]} but got --iters '
                         f'{args.iters}; use the same budget or another --out')
    with tempfile.TemporaryDirectory() as work:
        for look in args.looks:
            root = make_data(look, args.num_train, work)
            kept = looks.get(look, {}) if args.merge else {}
            per_seed = kept.get('per_seed', {})
            if isinstance(per_seed, list):  # seed order, as run_seeds keeps it
                per_seed = {str(s): t for s, t in zip(kept['seeds'], per_seed)}
            for seed in args.seeds:
                for method in [m for m in args.methods if m not in per_seed.get(str(seed), {})]:
                    row = bench_accuracy(look, root, args.iters, seed, work, [method])[method]
                    per_seed.setdefault(str(seed), {})[method] = row
                    per_seed = dict(sorted(per_seed.items(), key=lambda kv: int(kv[0])))
                    looks[look] = summarise(per_seed)
                    save_sections(args.out, dict(accuracy=dict(settings=settings, looks=looks)))
                print_accuracy(look, looks[look])


def combine_accuracy(paths, out: str) -> None:
    """``--combine``: the accuracy sections of runs made as separate processes (one per
    core, each with its own ``--seeds``, the same budget) merged into ``out``."""
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f)['accuracy'])
    problem = settings_mismatch(paths, [p['settings'] for p in parts], {'torch_threads'})
    if problem:
        raise ValueError(f'--combine: {problem}')
    looks = {}
    for look in sorted({lk for part in parts for lk in part['looks']}):
        per_seed = {}
        for path, part in zip(paths, parts):
            for seed, rows in part['looks'].get(look, {}).get('per_seed', {}).items():
                if seed in per_seed:
                    raise ValueError(f'--combine: seed {seed} of look {look!r} is in two '
                                     f'files (the second: {path}); give each seed once')
                per_seed[seed] = rows
        looks[look] = summarise(dict(sorted(per_seed.items(), key=lambda kv: int(kv[0]))))
        print_accuracy(look, looks[look])
    save_sections(out, dict(accuracy=dict(settings=dict(parts[0]['settings'],
                                                        combined=list(paths)), looks=looks)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=600,
                        help='training iterations per method (in total: separate detectors '
                             'get half each)')
    parser.add_argument('--num-train', type=int, default=400, help='train images per source')
    parser.add_argument('--looks', nargs='+', default=['shifted', 'shared'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    parser.add_argument('--merge', action='store_true',
                        help='keep (and skip) the seeds / methods of an earlier accuracy run in --out')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--skip-speed', action='store_true')
    parser.add_argument('--skip-accuracy', action='store_true')
    parser.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/multi_head.json'))
    parser.add_argument('--combine', nargs='+', default=None, metavar='JSON',
                        help='merge the accuracy seeds of runs made as separate processes '
                        '(same settings, other --seeds) into --out, and report')
    args = parser.parse_args()
    if args.combine:
        return combine_accuracy(args.combine, args.out)
    if not args.skip_speed:
        speed = [bench_speed('retinanet', 320, 4, args.repeats),
                 bench_speed('rtmdet_tiny', 320, 4, args.repeats)]
        save_sections(args.out, dict(speed=dict(settings=dict(repeats=args.repeats),
                                                results=speed)))
        print_table('train step (ratio of medians; goals: <= 1.10 vs single, < 1 vs masked)',
                    speed, ['arch', 'train_ratio_vs_single', 'train_ratio_vs_all_heads_masked'])
        print_table('inference (2-head model vs two detectors; goal >= 1.6, limit measured)',
                    speed, ['arch', 'infer_speedup_vs_two_detectors', 'infer_speedup_limit'])
    if not args.skip_accuracy:
        run_accuracy(args)


if __name__ == '__main__':
    main()
