"""Benchmark loss weighting and gradient surgery (issue: dataset-level supervision, item 7).

Speed: one train step (forward, backward, optimizer step) of the same multi-head RetinaNet-R18
with a dataset head (3 tasks: person, animal, aux) under each weighting / surgery method,
run in turn in one process (alternating, medians), as a ratio to equal weighting.
Peak memory: each method runs its steps in a fresh process; the peak RSS reached during the
steps above the RSS before them (VmHWM after a reset), as a ratio to equal weighting.
Accuracy: the ablation families of configs/mtl (detector, classifier) trained with the same
budget on generated data (fixed), tabulated by tools/ablate.py (per-dataset metrics); each
detector's best checkpoint is also evaluated, with mmdet's stock tools/test.py, on the same
two sources drawn in an unseen third look (columns ``unseen/*``: generalisation, where a
dataset head with gradient reversal is meant to matter), once
per training seed (``--seeds``, default 0 1 2): mean ± sample std per cell, and every run
compared with the baseline on the paired per-seed differences (inside 2 std: no difference).

Usage:
    python benchmarks/mtl.py                        # speed + memory + accuracy
    python benchmarks/mtl.py --skip-accuracy        # speed + memory only (~3 min)
"""
import argparse
import copy
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
from common import (print_seed_table, print_table, run_seeds, save,  # noqa: E402
                    time_alternating, versus)

DSHEAD = osp.join(REPO, 'configs/mtl/mtl-dshead_retinanet_r18_fpn_1xb8-6e_synthetic.py')
METHODS = {
    'equal': (dict(type='EqualWeighting'), None),
    'fixed': (dict(type='FixedWeighting', weights=dict(aux=0.5)), None),
    'uncertainty': (dict(type='UncertaintyWeighting'), None),
    'dwa': (dict(type='DWAWeighting', window=2), None),
    'gradnorm': (dict(type='GradNormWeighting', shared_layer='neck'), None),
    'rlw': (dict(type='RLWWeighting'), None),
    'pcgrad': (None, dict(type='PCGrad')),
    'gradvac': (None, dict(type='GradVac')),
    'cagrad': (None, dict(type='CAGrad', c=0.5)),
}


def _setup(root: str, method: str):
    """Model, optim wrapper and one fixed batch (4 person + 4 animal images, 128 px)."""
    import mtl_plugin  # noqa: F401
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DATASETS, MODELS, init_default_scope
    cfg = Config.fromfile(DSHEAD)
    init_default_scope('mmdet')
    weighting, aggregator = METHODS[method]
    if weighting is not None:
        cfg.model.loss_weighting = weighting
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    for d in ds_cfg.datasets:
        d.data_root = root
    dataset = DATASETS.build(ds_cfg)
    idx = [0, 1, 2, 3] + [len(dataset) - 1 - i for i in range(4)]
    batch = pseudo_collate([dataset[i] for i in idx])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    ow = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4))
    if aggregator is not None:
        ow.update(type='GradSurgeryOptimWrapper', aggregator=aggregator)
    return model, build_optim_wrapper(model, ow), batch


def _data(root: str) -> None:
    from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source
    if not osp.exists(osp.join(root, 'meta.json')):
        generate_multi_source(root, GeneratorConfig(num_train=8, num_val=0, num_test=0))


def bench_speed(root: str, repeats: int) -> dict:
    """Median step time of each method, alternating in one process."""
    setups = {m: _setup(root, m) for m in METHODS}

    def step(m):
        model, ow, batch = setups[m]
        return lambda: _train_step(model, ow, batch)

    times = time_alternating({m: step(m) for m in METHODS}, repeats=repeats, warmup=2)
    return {m: dict(step_s=t, time_ratio=t / times['equal']) for m, t in times.items()}


_CLOCK = {}


def _train_step(model, ow, batch) -> None:
    """One step outside a Runner: advance the clock that methods read from the MessageHub
    (DWA periods, RLW draws, schedules), as the Runner's RuntimeInfoHook would."""
    from mmengine.logging import MessageHub
    it = _CLOCK[id(model)] = _CLOCK.get(id(model), -1) + 1
    hub = MessageHub.get_current_instance()
    for key, value in dict(iter=it, epoch=0, max_iters=10**6, max_epochs=1).items():
        hub.update_info(key, value)
    model.train_step(batch, ow)


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))


def _peak_rss_child(root: str, method: str, steps: int) -> None:
    """Peak RSS *during the steps*: the process-lifetime peak (imports, dataset building)
    is reset through /proc/self/clear_refs (Linux >= 4.0) after one warm-up step."""
    model, ow, batch = _setup(root, method)
    _train_step(model, ow, batch)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM (peak RSS) to the current RSS
    base = _status_kib('VmRSS')
    for _ in range(steps):
        _train_step(model, ow, batch)
    print(json.dumps(dict(base_kib=base, peak_kib=_status_kib('VmHWM'))))


def bench_memory(root: str, steps: int) -> dict:
    """Peak RSS above the pre-step RSS while a fresh process runs ``steps`` steps."""
    out = {}
    for m in METHODS:
        proc = subprocess.run([sys.executable, __file__, '--_peak-rss', m, '--data', root,
                               '--steps', str(steps)], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=REPO))
        if proc.returncode != 0:
            raise RuntimeError(f'{m}: {proc.stderr[-3000:]}')
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        out[m] = (res['peak_kib'] - res['base_kib']) / 1024.0
    return {m: dict(step_peak_mib=v, mem_ratio=v / out['equal']) for m, v in out.items()}


# the unseen third look (item 4 of the consolidation issue): neither training look's
# background (person: sand-coloured, smooth; animal: green, noisy), colour or object scale
UNSEEN_LOOK = dict(background=(150, 70, 170), texture=14.0, scale=(0.14, 0.34))


def _unseen_look_data(root: str, num_val: int = 32) -> None:
    """Validation files of both sources (same classes, same partial labels as the training
    data's val files) drawn in :data:`UNSEEN_LOOK`, which no model trains on."""
    from mtl_plugin.synthetic import GeneratorConfig, SourceSpec, generate_multi_source
    if osp.exists(osp.join(root, 'meta.json')):
        return
    sources = [SourceSpec('person', ('person', ), **UNSEEN_LOOK),
               SourceSpec('animal', ('cat', 'bird'), **UNSEEN_LOOK)]
    generate_multi_source(root, GeneratorConfig(sources=sources, num_train=0, num_val=num_val,
                                                num_test=0, seed=4))


DET_NUM_VAL = 32  # detector family: validation images per source


def _families(work: str, num_train: int, epochs: int, cls_num_val: int = 40) -> dict:
    """Family -> (configs, cfg-options) of the ablation, with the generated data
    (``cls_num_val`` validation images per class for the classifier family)."""
    from mtl_plugin.synthetic import (ClsGeneratorConfig, GeneratorConfig,
                                      generate_classification, generate_multi_source)
    data, cls_data = osp.join(work, 'data'), osp.join(work, 'cls_data')
    if not osp.exists(osp.join(data, 'meta.json')):
        generate_multi_source(data, GeneratorConfig(num_train=num_train, num_val=DET_NUM_VAL,
                                                    num_test=0, seed=3))
    _unseen_look_data(osp.join(work, 'unseen_look'))
    if not osp.exists(osp.join(cls_data, 'annotations')):
        generate_classification(cls_data, ClsGeneratorConfig(seed=3, num_val=cls_num_val))
    return dict(
        # data_root is substituted when the config is parsed: override every source's
        detector=(sorted(glob.glob(osp.join(REPO, 'configs/mtl/mtl-*_retinanet_*.py'))),
                  [f'train_cfg.max_epochs={epochs}'] + [
                      f'{split}_dataloader.dataset.datasets.{i}.data_root={data}/'
                      for split in ('train', 'val') for i in (0, 1)] + [
                      f'val_evaluator.metrics.{g}.ann_file={data}/annotations/{g}_val.json'
                      for g in ('person', 'animal')]),
        classifier=(sorted(glob.glob(osp.join(REPO, 'configs/mtl/mtl-*_hier-cls_*.py'))),
                    [f'train_cfg.max_epochs={epochs}'] + [
                        f'{split}_dataloader.dataset.datasets.{i}.data_root={cls_data}/'
                        for split in ('train', 'val') for i in (0, 1)]))


def ablation_rows(table: dict) -> dict:
    """An ``ablation.json`` of tools/ablate.py as run (config name up to its first ``_``)
    -> column -> value in percent (COCO mAP fractions x100; accuracies are percent already)."""
    return {name.split('_')[0]: {c: round((100 if 'mAP' in c else 1) * run['metrics'][c], 2)
                                 for c in table['columns'] if c in run['metrics']}
            for name, run in table['runs'].items()}


def run_family(family: str, configs: list, options: list, work: str, seed: int) -> dict:
    """One seed of one ablation family (every config trained with ``randomness.seed``)."""
    root = osp.join(work, f'{family}_s{seed}')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'ablate.py'), *configs, '--run',
           '--work-root', root, '--cfg-options', *options, f'randomness.seed={seed}']
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=REPO))
    with open(osp.join(root, 'ablation.json')) as f:
        rows = ablation_rows(json.load(f))
    if family == 'detector':  # the same best checkpoints on the unseen look
        for config in configs:
            name = osp.splitext(osp.basename(config))[0]
            rows[name.split('_')[0]].update(
                test_unseen_look(config, osp.join(root, name), osp.join(work, 'unseen_look'),
                                 osp.join(work, 'data')))
    return rows


def test_unseen_look(config: str, run_dir: str, look: str, train_data: str) -> dict:
    """Evaluate the run's best checkpoint on the unseen look's val files with mmdet's stock
    ``tools/test.py``: ``unseen/<group>`` -> bbox mAP x100. (The training data is named too:
    MMEngine's EarlyStoppingHook, in these configs, builds the train loop even in a test.)"""
    import mmdet
    ckpts = glob.glob(osp.join(run_dir, 'best_*.pth'))
    if len(ckpts) != 1:
        raise RuntimeError(f'expected one best checkpoint in {run_dir}, found {ckpts}')
    out = osp.join(run_dir, 'unseen_look')
    options = [f'{split}_dataloader.dataset.datasets.{i}.data_root={root}/' for i in (0, 1)
               for split, root in (('test', look), ('train', train_data))] + [
        f'test_evaluator.metrics.{g}.ann_file={look}/annotations/{g}_val.json'
        for g in ('person', 'animal')]
    cmd = [sys.executable, osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py'),
           config, ckpts[0], '--work-dir', out, '--cfg-options', *options]
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONPATH=REPO),
                   stdout=subprocess.DEVNULL)
    logs = sorted(glob.glob(osp.join(out, '*', '*.json')))
    with open(logs[-1]) as f:
        metrics = json.load(f)
    # CocoMetric reports nothing for a group without a single detection: AP 0
    return {f'unseen/{g}': round(100 * metrics.get(f'{g}/coco/bbox_mAP', 0.0), 2)
            for g in ('animal', 'person', 'mean')}


def family_over_seeds(family: str, study, seeds, on_seed=None) -> dict:
    """Run ``study(seed) -> run -> column -> value`` for every seed; mean ± std per cell and
    every run compared with the ``*baseline*`` run (paired, 2 std), table printed."""
    res = run_seeds(study, seeds, on_seed=on_seed)
    stats = res['stats']
    ref = next((r for r in stats if 'baseline' in r), None)
    columns = list(next(iter(stats.values())))
    res['vs_baseline'] = versus(stats, ref, columns) if ref else {}
    print_seed_table(f'{family} ablation (%), seeds {res["seeds"]}', stats, columns, ref=ref,
                     key='run')
    return res


def bench_accuracy(work: str, num_train: int, epochs: int, only=('detector', 'classifier'),
                   seeds=(0, 1, 2), cls_num_val: int = 40) -> dict:
    """Train each ablation family with the same budget for every seed (data fixed: generator
    seed 3); mean ± std of the ablate.py columns over seeds."""
    from mtl_plugin.synthetic import ClsGeneratorConfig
    tables = {}
    for family, (configs, options) in _families(work, num_train, epochs,
                                                cls_num_val).items():
        if not configs or family not in only:
            continue
        tables[family] = family_over_seeds(family, lambda seed, f=family, c=configs, o=options:
                                           run_family(f, c, o, work, seed), list(seeds))
        tables[family]['settings'] = dict(  # each family keeps the settings it ran with
            epochs=epochs, seeds=list(seeds), date=time.strftime('%Y-%m-%d'),
            **(dict(num_train=num_train, num_val=DET_NUM_VAL) if family == 'detector' else
               dict(num_train_per_class=ClsGeneratorConfig.num_train,
                    num_val_per_class=cls_num_val)))
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--steps', type=int, default=3, help='steps per memory process')
    parser.add_argument('--num-train', type=int, default=160)
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--cls-num-val', type=int, default=40,
                        help='classifier family: validation images per class (5 classes)')
    parser.add_argument('--skip-speed', action='store_true')
    parser.add_argument('--skip-accuracy', action='store_true')
    parser.add_argument('--families', nargs='+', default=['detector', 'classifier'])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='training seeds of the accuracy study (data fixed)')
    parser.add_argument('--work', default=None)
    parser.add_argument('--merge', action='store_true',
                        help='keep the part of --out that this run skips')
    parser.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/mtl.json'))
    parser.add_argument('--_peak-rss', dest='peak_rss', default=None, help=argparse.SUPPRESS)
    parser.add_argument('--data', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_rss:
        return _peak_rss_child(args.data, args.peak_rss, args.steps)
    work = args.work or tempfile.mkdtemp(prefix='bench_mtl_')
    payload = dict(settings=vars(args))
    if not args.skip_speed:
        root = osp.join(work, 'speed_data')
        _data(root)
        speed = bench_speed(root, args.repeats)
        mem = bench_memory(root, args.steps)
        rows = [dict(method=m, **speed[m], **mem[m]) for m in METHODS]
        print_table('one train step, multi-head RetinaNet-R18 + dataset head (3 tasks), '
                    'batch 8 x 128 px, CPU', rows,
                    ['method', 'step_s', 'time_ratio', 'step_peak_mib', 'mem_ratio'])
        payload['speed'] = rows
    if not args.skip_accuracy:
        payload['accuracy'] = bench_accuracy(work, args.num_train, args.epochs, args.families,
                                             args.seeds, args.cls_num_val)
    if args.merge and osp.exists(args.out):  # keep the other part of an earlier run
        with open(args.out) as f:
            old = json.load(f)
        accuracy = {**old.get('accuracy', {}), **payload.get('accuracy', {})}
        payload = {**{k: v for k, v in old.items() if k in ('speed', 'accuracy')}, **payload}
        if accuracy:
            payload['accuracy'] = accuracy
    save(args.out, payload)


if __name__ == '__main__':
    main()
