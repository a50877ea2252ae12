"""Benchmark the group-aware training schemes on a top-down pose task (issue 13, item 3).

The pose counterpart of ``benchmarks/group_boost.py`` (same generated data, from its
``make_data``): group 1 ("animal": cat + bird) is rare and harder than group 0 ("person"):
fewer training images (``--rare-train``), smaller objects, a noisier background. Each object
carries the generator's 4 keypoints (top, right, bottom, left extreme points). Every scheme
of ``configs/group_boost/*_td-hm_res18_synthetic.py`` (narrow ResNet-18 heatmap model, 64x64
crops, 16x16 heatmaps) is loaded with ``Config.fromfile`` and trained for exactly the same
number of iterations (``IterBasedTrainLoop``, batch 32, Adam lr 2e-3); the
configs' epoch milestones become iteration milestones (curriculum at 1/3 and 2/3 of the
budget, the aux-task weight drop at 1/4). Each model is then evaluated per group with
``GroupedMetric`` (mmpose ``CocoMetric`` on each group's val file, GT boxes): keypoint AP
per group and their mean. The study runs once per training seed (``--seeds``, default
0 1 2; the data stay fixed): mean ± sample std per scheme, each compared with the baseline
on the paired per-seed differences (inside 2 std: no difference).

Usage:
    python benchmarks/group_boost_pose.py                      # full study
    python benchmarks/group_boost_pose.py --iters 50 --schemes baseline curriculum --seeds 0
"""
import argparse
import json
import os.path as osp
import sys
import tempfile
import time

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import mtl_plugin  # noqa: E402,F401
from common import replace_rows, report_study, run_seeds  # noqa: E402
from group_boost import make_data, point_to, scale_milestones  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG_DIR = osp.join(REPO, 'configs/group_boost')
SCHEMES = ['baseline', 'loss-weight', 'weighted-sampler', 'focal-heatmap', 'group-augment',
           'curriculum', 'balanced-data', 'aux-group-task', 'combined']
KEYS = dict(animal='animal/coco/AP', person='person/coco/AP', mean='mean/coco/AP')
METRICS = ['animal', 'person', 'mean']
BATCH = 32
LR = 2e-3  # Adam, instead of the schedule's 5e-4: a short CPU budget


def config_path(name: str) -> str:
    """The config file of scheme ``name``."""
    return osp.join(CFG_DIR, f'{name}_td-hm_res18_synthetic.py')


def scheme_cfg(name: str, root: str, work_dir: str, seed: int, iters: int) -> Config:
    """Scheme ``name``'s config on the data at ``root``: ``iters`` iterations of batch
    ``BATCH`` (Adam, lr ``LR``), epoch milestones moved to iterations, no checkpoint, no
    test split."""
    cfg = Config.fromfile(config_path(name))
    cfg.optim_wrapper.optimizer.lr = LR
    point_to(cfg, root)
    cfg.work_dir = work_dir
    cfg.train_dataloader.batch_size = BATCH
    cfg.randomness = dict(seed=seed)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6,
                                        by_epoch=False, save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.log_processor.by_epoch = False
    cfg.visualizer.name = f'vis_pose_{name}_{seed}'
    cfg.log_level = 'WARNING'
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    return cfg


def iter_milestones(cfg: Config, iters: int) -> list:
    """The configs' epoch milestones as iteration milestones of an ``iters`` budget
    (:func:`group_boost.scale_milestones` with the budget as the unit count)."""
    out = scale_milestones(cfg, iters)
    for hook in cfg.get('custom_hooks', []):
        if hook.get('type') == 'CurriculumLearningHook':
            for s in hook['schedules']:
                s['by_epoch'] = False
    return out


def run_scheme(name: str, root: str, work: str, iters: int, seed: int) -> dict:
    """Train scheme ``name`` with ``seed`` for ``iters`` iterations and evaluate it per
    group: AP x100 per group (and their mean), iterations, seconds."""
    init_default_scope('mmpose')
    cfg = scheme_cfg(name, root, osp.join(work, f'{name}_{seed}'), seed, iters)
    milestones = iter_milestones(cfg, iters)
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_s = time.perf_counter() - start
    metrics = runner.val()
    row = {k: round(100 * metrics[v], 1) for k, v in KEYS.items()}
    row.update(scheme=name, seed=seed, train_samples=len(runner.train_dataloader.dataset),
               iters=runner.iter, train_s=round(train_s, 1),
               eval_s=round(time.perf_counter() - start - train_s, 1))
    if milestones:
        row['milestones'] = milestones
    print(f'{name} (seed {seed}): animal {row["animal"]}  person {row["person"]}  '
          f'mean {row["mean"]}  [{runner.iter} iters, {train_s:.0f} s]', flush=True)
    return row


def study_seed(args: argparse.Namespace, root: str, work: str, seed: int) -> dict:
    """Every scheme trained with one training seed: scheme -> AP / budget row."""
    rows = {}
    for name in args.schemes:
        r = run_scheme(name, root, work, args.iters, seed)
        rows[name] = {k: r[k] for k in (*METRICS, 'iters', 'train_s')}
    return rows


def report(args: argparse.Namespace, data: dict, res: dict, t0: float,
           final: bool = True) -> None:
    """Mean ± std per scheme over seeds vs the baseline (:func:`common.report_study`):
    JSON after every seed, table at the end."""
    settings = dict(vars(args), batch_size=BATCH, optimizer=f'Adam lr {LR}',
                    input_size='64x64', heatmap_size='16x16', model='ResNet-18 base_channels 16 '
                    '+ 3 deconvs (SimpleBaseline), random init',
                    keypoints='top, right, bottom, left',
                    metric='keypoint AP (COCO OKS, sigmas 0.05, GT boxes) per group',
                    target_group='animal (group 1)', data=data, data_seed=1,
                    note='data fixed; the seed drives model init, sampling, augmentation')
    report_study(args.out, settings, res, t0, METRICS, [*METRICS, 'iters', 'train_s'],
                 f'group_boost pose (keypoint AP x100 on val, per group; {args.iters} '
                 f'iters, batch {BATCH}, seeds {res["seeds"]})', args.seeds, final=final)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=250, help='iteration budget per scheme')
    parser.add_argument('--num-train', type=int, default=320, help='person train images')
    parser.add_argument('--rare-train', type=int, default=48, help='animal train images')
    parser.add_argument('--num-val', type=int, default=48, help='val images per group')
    parser.add_argument('--schemes', nargs='+', default=SCHEMES, choices=SCHEMES)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='training seeds (data fixed: generator seed 1)')
    parser.add_argument('--out',
                        default=osp.join(REPO, 'benchmarks/results/group_boost_pose.json'))
    parser.add_argument('--update', action='store_true',
                        help='train only --schemes and replace those rows in the existing '
                        '--out (its other schemes kept; same seeds and settings)')
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.update:
        with open(args.out) as f:
            old = json.load(f)['settings']
        diff = [k for k in ('iters', 'num_train', 'rare_train', 'num_val')
                if old.get(k) != getattr(args, k)]
        if diff:
            parser.error(f'--update: {args.out} ran with other {diff}; give the same values')
    with tempfile.TemporaryDirectory() as work:
        root = osp.join(work, 'data')
        data = make_data(root, args.num_train, args.rare_train, args.num_val, seed=1)
        res = run_seeds(lambda seed: study_seed(args, root, work, seed), args.seeds,
                        on_seed=None if args.update else
                        lambda r: report(args, data, r, t0, final=False))
    if args.update:
        updated = args.schemes
        res = replace_rows(args.out, res)
        args.schemes = list(res['per_seed'][0])
        args.updated_schemes = updated
    report(args, data, res, t0, final=True)


if __name__ == '__main__':
    main()
