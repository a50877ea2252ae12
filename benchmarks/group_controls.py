"""Cost of the group controls: weighted group sampling and per-group augmentation.

Three sections (each skippable), timed in one process, alternating A/B, medians:

1. Sampler speed: one epoch of ``--num-samples`` (10M) indices over a fake dataset holding
   only ``group_ids`` (118,000 samples, groups 80/20, ``group_weights={1: 2.0}``):
   ``WeightedGroupSampler`` vs torch's ``WeightedRandomSampler`` on per-sample weights, both
   as ``list(iter(sampler))`` (the Python-list conversion the DataLoader does), next to that
   conversion alone (the floor for any sampler). Goal: ours >= 4x faster. Also: the per-item
   baseline ``for data in dataset: weights.append(group_weight[data['group_id']])`` over a
   real ``MultiSourceDataset`` (generated annotation-only COCO files, empty pipeline; timed on
   ``--loop-items`` items, extrapolated to the whole dataset) vs our sampler's construction
   on the same dataset.
2. Zero image reads: build the ``MultiSourceDataset`` over a generated 2 x 59,000-image
   annotation-only COCO file set, construct ``WeightedGroupSampler`` and draw one epoch with
   ``mmcv.imfrombytes`` / ``mmengine.fileio.get`` / ``cv2.imread`` patched to count calls.
3. ``GroupBasedAugmentation`` overhead (goal < 2 %): full passes of an mmdet pipeline over
   generated 128 px JPEGs, plain vs the same pipeline with RandomFlip + Resize wrapped in
   ``GroupBasedAugmentation(transforms={'default': [...]})`` (identical work, numpy RNG seeded
   before each pass), plus the dispatch cost per call measured alone. Run with one torch
   thread, as DataLoader workers do.

Usage:
    python benchmarks/group_controls.py            # full (~5-8 min on 2 busy cores)
    python benchmarks/group_controls.py --quick    # smoke run (~1 min)
    python benchmarks/group_controls.py --skip-speed --skip-reads   # augmentation only
"""
import argparse
import gc
import itertools
import os.path as osp
import statistics
import sys
import tempfile
import time
from unittest import mock

import cv2
import mmcv
import mmengine.fileio
import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.registry import DATASETS, init_default_scope
from torch.utils.data import WeightedRandomSampler

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import mtl_plugin  # noqa: E402,F401
from common import print_table, save, time_alternating  # noqa: E402
from mtl_plugin.datasets.samplers import WeightedGroupSampler  # noqa: E402
from mtl_plugin.datasets.transforms import GroupBasedAugmentation  # noqa: E402
from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = dict(person=('person', ), animal=('cat', 'bird'))
GROUP_WEIGHTS = {1: 2.0}


def sources(root, pipeline):
    return [dict(type='CocoDataset', group_name=g, data_root=root,
                 ann_file=f'annotations/{g}_train.json', data_prefix=dict(img=f'images/{g}/'),
                 metainfo=dict(classes=c), pipeline=list(pipeline))
            for g, c in CLASSES.items()]


def build_multi_source(root, pipeline=()):
    return DATASETS.build(dict(type='MultiSourceDataset', datasets=sources(root, pipeline)))


def generate(root, per_source, write_images):
    start = time.perf_counter()
    generate_multi_source(root, GeneratorConfig(num_train=per_source, num_val=0, num_test=0,
                                                write_images=write_images, seed=0))
    return time.perf_counter() - start


class _GroupIdsOnly:
    """A dataset reduced to what the sampler reads: ``group_ids`` and a length."""

    def __init__(self, group_ids):
        self.group_ids = group_ids

    def __len__(self):
        return len(self.group_ids)


def drain(sampler):
    """What the DataLoader does with a sampler: turn its iterator into Python ints."""
    list(iter(sampler))


# ---------------------------------------------------------------------------- section 1
def sampler_speed(args, ann_root):
    n = args.fake_size
    ids = np.zeros(n, dtype=np.int64)
    ids[int(0.8 * n):] = 1
    fake = _GroupIdsOnly(ids)
    ours = WeightedGroupSampler(fake, group_weights=GROUP_WEIGHTS, num_samples=args.num_samples,
                                seed=0)
    per_sample = torch.from_numpy(np.where(ids == 1, GROUP_WEIGHTS[1], 1.0))
    theirs = WeightedRandomSampler(per_sample, num_samples=args.num_samples, replacement=True)
    drawn = ours._draw(0)  # a ready tensor of the same indices: the list-conversion floor
    fns = dict(ours=lambda: drain(ours), torch_weighted=lambda: drain(theirs),
               list_floor=lambda: list(iter(drawn.tolist())), ours_draw=lambda: ours._draw(0))
    times = time_alternating(fns, repeats=args.repeats, warmup=1)
    del drawn
    gc.collect()
    speed = dict(num_samples=args.num_samples, dataset_size=n,
                 ours_s=times['ours'], torch_weighted_s=times['torch_weighted'],
                 ours_draw_only_s=times['ours_draw'], list_floor_s=times['list_floor'],
                 speedup=times['torch_weighted'] / times['ours'],
                 limit_speedup=times['torch_weighted'] / times['list_floor'],
                 ours_over_floor=times['ours'] / times['list_floor'])
    print_table(f'1a. one epoch of {args.num_samples:,} weighted draws -> Python list '
                f'(median of {args.repeats}; goal: speedup >= 4x; limit_speedup = torch / list conversion '
                'alone, what a free draw would reach)', [speed], list(speed))

    ds = build_multi_source(ann_root)
    size = len(ds)
    k = min(args.loop_items, size)
    weight_of = {0: 1.0, **GROUP_WEIGHTS}

    def per_item_loop():
        weights = []
        for data in itertools.islice(ds, k):
            weights.append(weight_of[data['group_id']])

    def construct():
        WeightedGroupSampler(ds, group_weights=GROUP_WEIGHTS, seed=0)

    t = time_alternating(dict(loop=per_item_loop, construct=construct),
                         repeats=args.repeats, warmup=1)
    loop_full = t['loop'] / k * size
    build = dict(dataset_size=size, loop_items_timed=k, loop_us_per_item=1e6 * t['loop'] / k,
                 loop_extrapolated_s=loop_full, sampler_construct_s=t['construct'],
                 construct_speedup=loop_full / t['construct'])
    print_table(f'1b. per-sample weights by a per-item loop over the dataset vs '
                f'WeightedGroupSampler construction ({size:,} samples, median of {args.repeats})',
                [build], list(build))
    return dict(epoch=speed, construction=build)


# ---------------------------------------------------------------------------- section 2
def zero_reads(args, ann_root):
    calls = dict(imfrombytes=0, fileio_get=0, cv2_imread=0)

    def counter(key):
        def count(*a, **k):
            calls[key] += 1
        return count

    with mock.patch.object(mmcv, 'imfrombytes', side_effect=counter('imfrombytes')), \
            mock.patch.object(mmengine.fileio, 'get', side_effect=counter('fileio_get')), \
            mock.patch.object(cv2, 'imread', side_effect=counter('cv2_imread')):
        start = time.perf_counter()
        ds = build_multi_source(ann_root)
        n = len(ds.group_ids)
        built = time.perf_counter()
        sampler = WeightedGroupSampler(ds, group_weights=GROUP_WEIGHTS, seed=0)
        constructed = time.perf_counter()
        epoch = list(iter(sampler))
        drawn = time.perf_counter()
    assert len(epoch) == n
    row = dict(images=n, dataset_build_s=built - start, sampler_construct_s=constructed - built,
               epoch_s=drawn - constructed, **calls, image_reads=sum(calls.values()))
    print_table('2. MultiSourceDataset + WeightedGroupSampler on an annotation-only COCO file '
                '(one run; goal: zero image reads)', [row], list(row))
    return row


# ---------------------------------------------------------------------------- section 3
def _paired(fa, fb, repeats, warmup):
    """Alternate A, B; per-pair ratios B/A and the times."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    for i in range(repeats):
        # swap the order every other pair so neither side always runs second
        order = ((ta, fa), (tb, fb)) if i % 2 == 0 else ((tb, fb), (ta, fa))
        for times, fn in order:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return ta, tb, [b / a for a, b in zip(ta, tb)]


def augmentation_overhead(args, img_root):
    # DataLoader workers run with one torch thread; with the default threads here, the
    # .contiguous() in PackDetInputs waits on the busy thread pool for ~7 ms per 128 px
    # image, 10x the rest of the pipeline, which would hide any dispatch overhead
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _augmentation_overhead(args, img_root)
    finally:
        torch.set_num_threads(threads)


def _augmentation_overhead(args, img_root):
    aug = [dict(type='RandomFlip', prob=0.5), dict(type='Resize', scale=(128, 128),
                                                   keep_ratio=True)]
    head = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]
    tail = [dict(type='PackDetInputs')]
    plain = build_multi_source(img_root, head + aug + tail)
    wrapped = build_multi_source(
        img_root, head + [dict(type='GroupBasedAugmentation', transforms={'default': aug})] + tail)
    size = len(plain)

    def run_pass(ds, keep=None):
        np.random.seed(0)
        for _ in range(args.aug_epochs):
            for i in range(size):
                out = ds[i]
                if keep is not None:
                    keep.append(out)

    # the two pipelines must do identical work: same flips, same tensors
    outs_a, outs_b = [], []
    run_pass(plain, outs_a)
    run_pass(wrapped, outs_b)
    identical = all(
        a['data_samples'].metainfo['flip'] == b['data_samples'].metainfo['flip']
        and torch.equal(a['inputs'], b['inputs'])
        and torch.equal(a['data_samples'].gt_instances.bboxes.tensor,
                        b['data_samples'].gt_instances.bboxes.tensor)
        for a, b in zip(outs_a, outs_b))
    flips = sum(bool(a['data_samples'].metainfo['flip']) for a in outs_a)
    del outs_a, outs_b

    ta, tb, ratios = _paired(lambda: run_pass(plain), lambda: run_pass(wrapped),
                             args.aug_repeats, warmup=2)
    per_sample = statistics.median(ta) / (size * args.aug_epochs)

    # the dispatch alone: GroupBasedAugmentation with an empty branch vs an empty Compose
    calls = args.dispatch_calls
    gba = GroupBasedAugmentation(transforms={'default': []})
    empty = Compose([])
    sample = dict(group_id=0, group_name='person')

    def call_many(fn):
        def run():
            for _ in range(calls):
                fn(sample)
        return run

    d = time_alternating(dict(gba=call_many(gba), compose=call_many(empty)),
                         repeats=args.aug_repeats, warmup=1)
    dispatch_us = 1e6 * (d['gba'] - d['compose']) / calls
    row = dict(samples_per_pass=size * args.aug_epochs, identical_outputs=identical,
               flipped=f'{flips}/{size * args.aug_epochs}',
               plain_pass_s=statistics.median(ta), gba_pass_s=statistics.median(tb),
               overhead_pct=100 * (statistics.median(tb) / statistics.median(ta) - 1),
               paired_overhead_pct=100 * (statistics.median(ratios) - 1),
               paired_iqr_pct=f'{100 * (np.percentile(ratios, 25) - 1):+.2f}..'
                              f'{100 * (np.percentile(ratios, 75) - 1):+.2f}',
               dispatch_us=dispatch_us, dispatch_pct=100 * dispatch_us * 1e-6 / per_sample)
    print_table(f'3. GroupBasedAugmentation vs the plain mmdet pipeline, full passes over '
                f'{size} generated 128 px JPEGs x {args.aug_epochs} (median of '
                f'{args.aug_repeats}, 1 torch thread as in DataLoader workers; goal: overhead < 2 %)', [row], list(row))
    return dict(row, plain_pass_times=ta, gba_pass_times=tb, per_sample_us=1e6 * per_sample)


# ---------------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke run (~1 minute)')
    parser.add_argument('--skip-speed', action='store_true', help='skip section 1')
    parser.add_argument('--skip-reads', action='store_true', help='skip section 2')
    parser.add_argument('--skip-aug', action='store_true', help='skip section 3')
    parser.add_argument('--num-samples', type=int, default=10_000_000)
    parser.add_argument('--fake-size', type=int, default=118_000)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--images-per-source', type=int, default=59_000,
                        help='annotation-only images per source (sections 1b, 2)')
    parser.add_argument('--loop-items', type=int, default=2000)
    parser.add_argument('--aug-images-per-source', type=int, default=64)
    parser.add_argument('--aug-epochs', type=int, default=4, help='epochs per timed pass')
    parser.add_argument('--aug-repeats', type=int, default=21)
    parser.add_argument('--dispatch-calls', type=int, default=100_000)
    parser.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/group_controls.json'))
    args = parser.parse_args()
    if args.quick:
        args.num_samples, args.repeats, args.images_per_source = 1_000_000, 2, 5000
        args.loop_items, args.aug_images_per_source = 500, 16
        args.aug_epochs, args.aug_repeats, args.dispatch_calls = 2, 7, 20_000
    init_default_scope('mmdet')
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        ann_root, img_root = osp.join(tmp, 'ann_only'), osp.join(tmp, 'with_images')
        if not (args.skip_speed and args.skip_reads):
            results['generate_annotation_only_s'] = generate(ann_root, args.images_per_source,
                                                             write_images=False)
        if not args.skip_speed:
            results['sampler_speed'] = sampler_speed(args, ann_root)
            gc.collect()
        if not args.skip_reads:
            results['zero_image_reads'] = zero_reads(args, ann_root)
            gc.collect()
        if not args.skip_aug:
            generate(img_root, args.aug_images_per_source, write_images=True)
            results['augmentation_overhead'] = augmentation_overhead(args, img_root)
    save(args.out, dict(settings=vars(args), **results))


if __name__ == '__main__':
    main()
