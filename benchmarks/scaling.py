"""Benchmark cost vs the number of heads, and gradient surgery's cost (issue 14, item 3).

1. Heads: RetinaNet-R18-FPN (stock head: 256 channels, 4 stacked convs) and RTMDet-tiny
   with 1, 2, 4, 8 heads, full heads vs partitioned heads (``partition_heads=dict()``:
   towers shared; ``dict(share_box=True)``: box branch shared too; ``partitioned_own_last``:
   ``dict(shared_convs=stacked_convs - 1)``, each head keeps its last tower convs). Train
   step (forward, backward, SGD step through ``model.train_step``; the batch's groups
   round-robin over the heads, the offset rotating from step to step so that every head
   trains) and merged inference (``model.test_step``, every head on every image;
   ``score_thr=1.0``, so that no candidate survives to NMS: the random-init scores would
   make NMS work random), each as a ratio to a single-head stock mmdet detector
   (``RetinaNet`` / ``RTMDet``, same head, same classes per head) timed in the same
   process, alternating, medians. Synthetic tensors + random GT.
2. Gradient surgery: PCGrad / GradVac / CAGrad step vs equal weighting (plain
   ``OptimWrapper``) on the 2-head RetinaNet-R18 of ``configs/mtl`` with a frozen-BN
   backbone (``norm_eval=True``, BN ``requires_grad=False``), without / with the dataset head
   (2 / 3 tasks), and with ``trunk_per_head=True`` (one trunk pass per head's sub-batch).

Peak memory: each configuration runs in a forked child of this process (forked before any
timing, so the child starts from the imports only) with glibc's mmap threshold fixed at
64 KiB (large blocks go back to the system when freed); after one warm-up call the peak RSS
is reset (``/proc/self/clear_refs``) and the figure is VmHWM minus VmRSS before the measured
call: the step's (or inference's) own peak, as a ratio to the stock detector (to equal
weighting for surgery).

Usage:
    OMP_NUM_THREADS=2 python benchmarks/scaling.py            # ~10-15 min on 2 cores
    OMP_NUM_THREADS=2 python benchmarks/scaling.py --quick    # smoke run (tiny, seconds)
    # the surgery part only, merged into the existing results (other sections kept);
    # --clock cpu: process CPU time, robust to other jobs on a shared machine (1 thread)
    OMP_NUM_THREADS=1 python benchmarks/scaling.py --only-surgery --clock cpu
    OMP_NUM_THREADS=1 python benchmarks/scaling.py --skip-surgery --merge  # heads part only
    OMP_NUM_THREADS=1 python benchmarks/scaling.py --only-infer  # merged inference columns
"""
import argparse
import copy
import ctypes
import json
import multiprocessing
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
import mtl_plugin  # noqa: E402,F401
from common import machine, print_table, time_alternating  # noqa: E402
from multi_head import ARCH, PREPROCESS, build  # noqa: E402

# partitioned_own_last: the first stacked convs shared, each head keeps its last one
MODES = dict(full=None, partitioned=dict(), partitioned_box=dict(share_box=True),
             partitioned_own_last=dict(own_last=True))
MTL_BASE = osp.join(REPO, 'configs/mtl/mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py')
SURGERY = dict(equal=None, pcgrad=dict(type='PCGrad'), gradvac=dict(type='GradVac'),
               cagrad=dict(type='CAGrad', c=0.5))
CLASSES_PER_HEAD = 2


# ---------------------------------------------------------------------------- models
def head_names(n: int) -> List[str]:
    """Head (= group) names ``h0 .. h{n-1}``."""
    return [f'h{i}' for i in range(n)]


def arch_kw(arch: str, quick: bool) -> dict:
    """Head size: stock RetinaNet head (256 ch, 4 convs); tiny in ``--quick``."""
    if arch == 'retinanet':
        return dict(ch=32, convs=2) if quick else dict(ch=256, convs=4)
    return {}


def _neck(arch: str, kw: dict) -> dict:
    neck = dict(ARCH[arch]['neck'])
    if 'ch' in kw:
        neck['out_channels'] = kw['ch']
    return neck


def model_cfg(arch: str, n: int, mode: str, quick: bool) -> dict:
    """``stock`` (mmdet RetinaNet / RTMDet) or a MultiHeadDetector with ``n`` heads."""
    a, kw = ARCH[arch], arch_kw(arch, quick)
    # random-init scores straddle score_thr by chance (one RTMDet init keeps thousands of
    # candidates for NMS, another none): no candidate survives, the same work for every model
    test_cfg = dict(a['test_cfg'], score_thr=1.0)
    common = dict(data_preprocessor=PREPROCESS, backbone=a['backbone'], neck=_neck(arch, kw),
                  train_cfg=a['train_cfg'], test_cfg=test_cfg)
    if mode == 'stock':
        return dict(type='RetinaNet' if arch == 'retinanet' else 'RTMDet',
                    bbox_head=a['head'](CLASSES_PER_HEAD, **kw), **common)
    names = head_names(n)
    cfg = dict(type='MultiHeadDetector', heads={h: a['head'](CLASSES_PER_HEAD, **kw)
                                                 for h in names},
               head_classes={h: tuple(f'{h}_c{j}' for j in range(CLASSES_PER_HEAD))
                             for h in names}, **common)
    if MODES[mode] is not None:
        part = dict(MODES[mode])
        if part.pop('own_last', False):
            part['shared_convs'] = cfg['heads'][names[0]]['stacked_convs'] - 1
        cfg['partition_heads'] = part
    return cfg


def build_model(cfg: dict) -> torch.nn.Module:
    """Build + init (seeded); a multi-head model gets the union of its heads' classes."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    model = build(cfg)
    if 'head_classes' in cfg:
        model.dataset_meta = dict(classes=tuple(c for cs in cfg['head_classes'].values()
                                                for c in cs))
    return model


def fake_batch(n_img: int, size: int, groups: List[str], offset: int = 0,
               seed: int = 0) -> dict:
    """Random images + DetDataSamples with 3 random GT boxes; sample ``i``'s group is
    ``groups[(i + offset) % len(groups)]`` (its ``group_id`` the index)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n_img):
        gid = (i + offset) % len(groups)
        inputs.append(torch.randint(0, 255, (3, size, size), generator=g, dtype=torch.uint8))
        xy = torch.rand(3, 2, generator=g) * size * 0.6
        wh = 16 + torch.rand(3, 2, generator=g) * size * 0.3
        s = DetDataSample(metainfo=dict(group_name=groups[gid], group_id=gid, img_id=i,
                                        img_shape=(size, size), ori_shape=(size, size),
                                        scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                      labels=torch.randint(0, CLASSES_PER_HEAD, (3, ),
                                                           generator=g))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def optim(model: torch.nn.Module, aggregator: Optional[dict] = None):
    """SGD OptimWrapper (``GradSurgeryOptimWrapper`` with an aggregator)."""
    from mmengine.optim import build_optim_wrapper
    cfg = dict(optimizer=dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4))
    if aggregator is not None:
        cfg.update(type='GradSurgeryOptimWrapper', aggregator=aggregator)
    return build_optim_wrapper(model, cfg)


# ---------------------------------------------------------------------------- callables
def head_fns(arch: str, n: int, mode: str, a: argparse.Namespace
             ) -> Tuple[Callable[[], None], Callable[[], None]]:
    """(train step, merged inference) of one configuration, ready to time."""
    model = build_model(model_cfg(arch, n, mode, a.quick))
    wrapper = optim(model)
    groups = head_names(max(n, 1))
    # rotating offsets: with more heads than images, successive steps train the others
    batches = [fake_batch(a.batch, a.size, groups, off) for off in range(0, max(n, a.batch),
                                                                         a.batch)]
    infer = fake_batch(a.infer_batch, a.size, groups)
    state = dict(k=0)

    def train() -> None:
        model.train()
        state['k'] += 1
        model.train_step(copy.deepcopy(batches[state['k'] % len(batches)]), wrapper)

    def predict() -> None:
        model.eval()
        with torch.no_grad():
            model.test_step(copy.deepcopy(infer))

    return train, predict


def surgery_cfg(method: str, tasks: int, trunk_per_head: bool) -> dict:
    """The configs/mtl 2-head RetinaNet-R18 (64-ch FPN), frozen-BN backbone, equal weighting
    (+ dataset head for 3 tasks)."""
    from mmengine.config import Config
    base = Config.fromfile(MTL_BASE)
    cfg = base.model.to_dict()
    cfg['backbone'].update(norm_eval=True, norm_cfg=dict(type='BN', requires_grad=False))
    cfg.update(loss_weighting=dict(type='EqualWeighting'), trunk_per_head=trunk_per_head,
               head_classes=dict(person=('person', ), animal=('cat', 'bird')))
    if tasks == 3:
        cfg['aux_head'] = base.dataset_cls_head.to_dict()
    return cfg


def surgery_fn(key: Tuple[str, int, bool], a: argparse.Namespace) -> Callable[[], None]:
    """One train step of a surgery configuration ``(method, tasks, trunk_per_head)``."""
    method, tasks, per_head = key
    model = build_model(surgery_cfg(method, tasks, per_head))
    model.train()
    wrapper = optim(model, SURGERY[method])
    batch = fake_batch(a.surgery_batch, a.surgery_size, ['person', 'animal'])
    for s in batch['data_samples']:  # person: 1 class
        s.gt_instances.labels = s.gt_instances.labels.clamp(
            max=0 if s.group_name == 'person' else 1)
    return lambda: model.train_step(copy.deepcopy(batch), wrapper)


def surgery_keys(quick: bool) -> List[Tuple[str, int, bool]]:
    """Equal weighting and each aggregator (whole-batch trunk, then trunk per head)."""
    methods, tasks = (['equal', 'pcgrad'], (3, )) if quick else (list(SURGERY), (2, 3))
    return [(m, t, p) for t in tasks for p in (False, True) for m in methods
            if not (m == 'equal' and p)]


# ---------------------------------------------------------------------------- memory
def _status_mib(field: str) -> float:
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ':')) / 1024.0


def _own_peak(fn: Callable[[], None]) -> float:
    """MiB of peak RSS above the RSS before ``fn`` (after one warm-up call)."""
    fn()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current RSS
    base = _status_mib('VmRSS')
    fn()
    return _status_mib('VmHWM') - base


def _memory_child(job: tuple) -> dict:
    torch.set_num_threads(1)  # memory only; keeps the forked child off the OpenMP pool
    ctypes.CDLL('libc.so.6').mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD: fixed, 64 KiB
    kind, key, a = job
    if kind == 'heads':
        train, predict = head_fns(*key, a)
        return dict(train_mib=_own_peak(train), infer_mib=_own_peak(predict))
    if kind == 'infer':
        return dict(infer_mib=_own_peak(head_fns(*key, a)[1]))
    return dict(step_mib=_own_peak(surgery_fn(key, a)))


def memory(jobs: List[tuple]) -> List[dict]:
    """Each job in a fresh forked child (before this process ran any torch op)."""
    ctx = multiprocessing.get_context('fork')
    out = []
    for job in jobs:
        with ctx.Pool(1) as pool:
            out.append(pool.apply(_memory_child, (job, )))
    return out


# ---------------------------------------------------------------------------- benches
def head_configs(quick: bool) -> List[Tuple[int, str]]:
    """(number of heads, mode); 0 = stock; 1 head is the same in every mode (full)."""
    ns = (1, 2) if quick else (1, 2, 4, 8)
    return [(0, 'stock')] + [(n, m) for n in ns for m in MODES if n > 1 or m == 'full']


def _ratio(value: float, base: float) -> Optional[float]:
    """``value / base``; None where the base peak is not positive (a tiny --quick model's
    inference can stay within the pages it already holds)."""
    return value / base if base > 0 else None


def bench_heads(arch: str, a: argparse.Namespace, mem: List[dict]) -> List[dict]:
    """Rows (n, mode, times, ratios to stock, memory) for one architecture."""
    confs = head_configs(a.quick)
    fns = {c: head_fns(arch, *c, a) for c in confs}
    train = time_alternating({c: f[0] for c, f in fns.items()}, a.repeats, a.warmup)
    infer = time_alternating({c: f[1] for c, f in fns.items()}, a.repeats, a.warmup)
    s, m0 = (0, 'stock'), mem[0]
    rows = []
    for c, m in zip(confs, mem):
        rows.append(dict(arch=arch, heads=c[0] or 1, mode=c[1], train_s=train[c],
                         infer_s=infer[c], train_ratio=train[c] / train[s],
                         infer_ratio=infer[c] / infer[s], train_mib=m['train_mib'],
                         infer_mib=m['infer_mib'],
                         train_mem_ratio=_ratio(m['train_mib'], m0['train_mib']),
                         infer_mem_ratio=_ratio(m['infer_mib'], m0['infer_mib'])))
    return rows


def only_infer(a: argparse.Namespace) -> None:
    """Merged inference alone (time, peak memory): its columns of the existing heads rows
    in ``a.out`` are replaced (stock and every configuration in this run, so the ratios are
    of one run); train columns, surgery and the train goals stay. ``infer_settings`` notes
    the run."""
    payload = _load(a.out)
    confs = head_configs(a.quick)
    mem = memory([('infer', (arch, *c), a) for arch in a.archs for c in confs])
    timer = cpu_alternating if a.clock == 'cpu' else time_alternating
    rows = {(r['arch'], r['heads'], r['mode']): r for r in payload['heads']}
    for k, arch in enumerate(a.archs):
        fns = {c: head_fns(arch, *c, a)[1] for c in confs}
        t = timer(fns, a.repeats, a.warmup)
        m = mem[k * len(confs):(k + 1) * len(confs)]
        for c, mc in zip(confs, m):
            r = rows[arch, c[0] or 1, c[1]]
            r.update(infer_s=t[c], infer_ratio=t[c] / t[0, 'stock'], infer_mib=mc['infer_mib'],
                     infer_mem_ratio=_ratio(mc['infer_mib'], m[0]['infer_mib']))
    print_table('merged inference, ratio to a stock single-head detector', payload['heads'],
                ['arch', 'heads', 'mode', 'infer_ratio', 'infer_mem_ratio', 'infer_s',
                 'infer_mib'])
    settings = {k: v for k, v in vars(a).items() if k not in ('out', 'png')}
    old = [g for g in payload['goals'] if 'infer' not in g['goal']]
    new = [g for g in goals(payload['heads'], [], payload['trunk_head_split'])
           if 'infer' in g['goal']]
    payload.update(goals=sorted(new + old, key=lambda g: g['goal'].startswith('pcgrad')),
                   infer_settings=dict(settings, date=time.strftime('%Y-%m-%d'),
                                       machine=machine()))
    with open(a.out, 'w') as f:
        json.dump(payload, f, indent=1)
    print(f'\nsaved {a.out} (merged inference)')
    plot(payload['heads'], a.png or osp.splitext(a.out)[0] + '.png')


def backbone_share(arch: str, a: argparse.Namespace) -> dict:
    """Backbone + neck vs whole stock inference (the physical limit of sharing)."""
    model = build_model(model_cfg(arch, 0, 'stock', a.quick)).eval()
    data = fake_batch(a.infer_batch, a.size, ['h0'])
    pre = model.data_preprocessor(copy.deepcopy(data), False)
    with torch.no_grad():
        t = time_alternating(dict(
            trunk=lambda: model.extract_feat(pre['inputs']),
            whole=lambda: model.test_step(copy.deepcopy(data))), a.repeats, a.warmup)
    b, h = t['trunk'], t['whole'] - t['trunk']
    return dict(arch=arch, trunk_s=b, head_s=h, head_share=h / t['whole'],
                **{f'full_limit_{n}': (b + n * h) / (b + h) for n in (2, 4, 8)})


def cpu_alternating(fns: Dict, repeats: int, warmup: int) -> Dict:
    """:func:`common.time_alternating` in process CPU seconds (use with 1 thread)."""
    return time_alternating(fns, repeats, warmup, clock=time.process_time)


def bench_surgery(a: argparse.Namespace, mem: List[dict]) -> List[dict]:
    """Step time + step peak memory of each surgery configuration vs equal weighting."""
    keys = surgery_keys(a.quick)
    timer = cpu_alternating if a.clock == 'cpu' else time_alternating
    t = timer({k: surgery_fn(k, a) for k in keys}, a.repeats, a.warmup)
    by_key = dict(zip(keys, mem))
    rows = []
    for k in keys:
        eq = ('equal', k[1], False)
        rows.append(dict(method=k[0], tasks=k[1], trunk_per_head=k[2], step_s=t[k],
                         time_ratio=t[k] / t[eq], step_mib=by_key[k]['step_mib'],
                         mem_ratio=_ratio(by_key[k]['step_mib'], by_key[eq]['step_mib'])))
    return rows


# ---------------------------------------------------------------------------- report
def goals(heads: List[dict], surgery: List[dict], shares: List[dict]) -> List[dict]:
    """The issue's goals against the measured numbers."""
    out = []
    top = max((r['heads'] for r in heads), default=0)
    for r in heads:
        if r['heads'] == top and r['mode'] != 'stock':
            share = next(s for s in shares if s['arch'] == r['arch'])
            for what, limit in (('infer', 1.25), ('train', 1.2)):
                v = r[f'{what}_ratio']
                out.append(dict(goal=f'{r["arch"]} {r["mode"]} {top} heads {what} <= {limit}x',
                                measured=v, met=bool(v <= limit) if 'part' in r['mode'] else None,
                                note=f'head share of stock inference {share["head_share"]:.2f}'
                                if what == 'infer' else ''))
    for r in surgery:
        if r['method'] != 'pcgrad':
            continue
        limits = [('time_ratio', 1.2 if r['tasks'] == 2 else 1.8), ('mem_ratio', 2.0)]
        for key, limit in limits:
            out.append(dict(goal=f'pcgrad {r["tasks"]} tasks trunk_per_head={r["trunk_per_head"]}'
                                 f' {key} <= {limit}x', measured=r[key],
                            met=bool(r[key] <= limit), note=''))
    return out


def plot(heads: List[dict], path: str) -> None:
    """Cost ratio vs number of heads: train / inference x architecture, one line per mode."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    archs = sorted({r['arch'] for r in heads})
    fig, axes = plt.subplots(2, len(archs), figsize=(5 * len(archs), 7), squeeze=False)
    for j, arch in enumerate(archs):
        for i, what in enumerate(('train', 'infer')):
            ax = axes[i][j]
            one = [r for r in heads if r['arch'] == arch and r['heads'] == 1
                   and r['mode'] == 'full']
            for mode in MODES:
                rows = one + [r for r in heads if r['arch'] == arch and r['mode'] == mode
                              and r['heads'] > 1]
                ax.plot([r['heads'] for r in rows], [r[f'{what}_ratio'] for r in rows], 'o-',
                        label=mode)
            ax.axhline(1.0, color='grey', lw=0.8, ls=':')
            ax.axhline(1.25 if what == 'infer' else 1.2, color='red', lw=0.8, ls='--',
                       label='goal (partitioned, 8 heads)')
            ax.set_xscale('log', base=2)
            ax.set_xticks([1, 2, 4, 8], ['1', '2', '4', '8'])
            ax.set_xlabel('number of heads')
            ax.set_ylabel(f'{what} time / stock single-head')
            ax.set_title(f'{arch}: {"train step" if what == "train" else "merged inference"}')
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f'saved {path}')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='tiny smoke run (tiny heads, 64 px)')
    p.add_argument('--archs', nargs='+', default=['retinanet', 'rtmdet_tiny'],
                   choices=list(ARCH))
    p.add_argument('--size', type=int, default=256, help='input px (heads part)')
    p.add_argument('--batch', type=int, default=2, help='train batch (heads part)')
    p.add_argument('--infer-batch', type=int, default=2)
    p.add_argument('--surgery-size', type=int, default=128)
    p.add_argument('--surgery-batch', type=int, default=8)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--skip-surgery', action='store_true')
    p.add_argument('--only-surgery', action='store_true',
                   help='run the surgery part only and merge it into --out (other sections '
                   'and goals kept)')
    p.add_argument('--only-infer', action='store_true',
                   help='re-measure merged inference (time, memory) only, into the heads '
                   'rows of --out')
    p.add_argument('--merge', action='store_true',
                   help='keep the part not measured (with --skip-surgery: the surgery '
                   'section) from the existing --out')
    p.add_argument('--clock', choices=['wall', 'cpu'], default='wall',
                   help='surgery step timer: wall clock, or process CPU time (1 thread)')
    p.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/scaling.json'))
    p.add_argument('--png', default=None, help='default: --out with .png')
    a = p.parse_args(argv)
    if a.quick:
        a.size, a.surgery_size, a.surgery_batch, a.repeats, a.warmup = 64, 64, 4, 1, 1
    return a


SURGERY_COLS = ['method', 'tasks', 'trunk_per_head', 'time_ratio', 'mem_ratio', 'step_s',
                'step_mib']


def _load(path: str) -> dict:
    if not osp.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def write_results(a: argparse.Namespace, heads: List[dict], shares: List[dict],
                  surgery: List[dict]) -> None:
    """Write the results JSON. With ``--merge`` (implied by ``--only-surgery``) the part this
    run did not measure (heads, or surgery) is kept from the existing file, goals included;
    the top-level ``settings`` / ``machine`` / ``date`` are the heads part's,
    ``surgery_settings`` (with its own machine and date) the surgery part's."""
    payload = _load(a.out) if a.merge or a.only_surgery else {}
    settings = {k: v for k, v in vars(a).items() if k not in ('out', 'png')}
    old_goals = payload.get('goals', [])
    if not a.only_surgery:
        payload.update(machine=machine(), date=time.strftime('%Y-%m-%d'), settings=settings,
                       memory_method=__doc__.split('Peak memory: ')[1].split('\n\n')[0]
                       .replace('\n', ' '), heads=heads, trunk_head_split=shares)
        payload.pop('infer_settings', None)  # an --only-infer run's columns: replaced
        old_goals = [g for g in old_goals if g['goal'].startswith('pcgrad')]
    if surgery:
        payload.update(surgery=surgery, surgery_settings=dict(
            settings, date=time.strftime('%Y-%m-%d'), machine=machine()))
        old_goals = [g for g in old_goals if not g['goal'].startswith('pcgrad')]
    new = goals(heads, surgery, shares)
    print_table('goals (issue 14)', new, ['goal', 'measured', 'met', 'note'])
    heads_first = sorted(old_goals + new, key=lambda g: g['goal'].startswith('pcgrad'))
    payload['goals'] = heads_first
    with open(a.out, 'w') as f:
        json.dump(payload, f, indent=1)
    print(f'\nsaved {a.out}')
    if not a.only_surgery:
        plot(heads, a.png or osp.splitext(a.out)[0] + '.png')


def print_surgery(a: argparse.Namespace, surgery: List[dict]) -> None:
    print_table(f'gradient surgery vs equal weighting, 2-head RetinaNet-R18, frozen BN '
                f'(batch {a.surgery_batch} x {a.surgery_size} px, {a.clock} clock)', surgery,
                SURGERY_COLS)


def main(argv: Optional[List[str]] = None) -> None:
    a = parse_args(argv)
    if a.only_infer:
        only_infer(a)
        return
    if a.only_surgery:
        surgery = bench_surgery(a, memory([('surgery', k, a) for k in surgery_keys(a.quick)]))
        print_surgery(a, surgery)
        write_results(a, [], [], surgery)
        return
    jobs = [('heads', (arch, *c), a) for arch in a.archs for c in head_configs(a.quick)]
    if not a.skip_surgery:
        jobs += [('surgery', k, a) for k in surgery_keys(a.quick)]
    mem = memory(jobs)  # forks first: no torch op has run in this process yet
    per_arch = len(head_configs(a.quick))
    heads, shares = [], []
    for i, arch in enumerate(a.archs):
        heads += bench_heads(arch, a, mem[i * per_arch:(i + 1) * per_arch])
        shares.append(backbone_share(arch, a))
    surgery = [] if a.skip_surgery else bench_surgery(a, mem[len(a.archs) * per_arch:])
    cols = ['arch', 'heads', 'mode', 'train_ratio', 'infer_ratio', 'train_mem_ratio',
            'infer_mem_ratio', 'train_s', 'infer_s']
    print_table(f'cost vs heads, ratio to a stock single-head detector ({a.size} px, train '
                f'batch {a.batch}, inference batch {a.infer_batch})', heads, cols)
    print_table('where stock inference goes (limit of full heads: (B + nH) / (B + H))', shares,
                ['arch', 'trunk_s', 'head_s', 'head_share', 'full_limit_2', 'full_limit_4',
                 'full_limit_8'])
    if surgery:
        print_surgery(a, surgery)
    write_results(a, heads, shares, surgery)


if __name__ == '__main__':
    main()
