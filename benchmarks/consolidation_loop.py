"""Does the consolidation loop pay? (issue 13, item 1.)

On generated two-source data where each source has its own look (person source: person
labelled; animal source: cat + bird labelled; each source's images also hold the other's
objects, unlabelled), per training seed, in one run:

* ``multi_head``: the two-head MultiHeadDetector on the partial files (the reference the
  loop must beat by 5 points);
* ``full_labels``: the loop's student model trained on the fully labelled files (the
  ceiling the loop must come within 5 points of);
* ``teacher`` / ``round<k>``: ``tools/consolidate_loop.py`` (masked union + CrossSourcePaste
  teacher, then per round: consolidate with thresholds tuned on held-out images, retrain);

every model with the same budget (``--epochs`` over the same images). Reported: bbox mAP
and per-class AP on the fully labelled mixed-look test split (mean ± std over the seeds),
and per round and class the pseudo-labels' precision / recall against the hidden objects on
the other source's images. The data is generated once (fixed); the seeds vary training.

Usage:
    python benchmarks/consolidation_loop.py                       # 3 seeds, shifted look
    python benchmarks/consolidation_loop.py --seeds 0 --rounds 1 --epochs 1   # smoke
    python benchmarks/consolidation_loop.py --seeds 1 --out part1.json   # one core each,
    python benchmarks/consolidation_loop.py --combine part0.json part1.json   # then merge
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
from common import merge_seed_parts, print_table, save, settings_mismatch  # noqa: E402

CLASSES = ('person', 'cat', 'bird')
OWN = dict(person=('person', ), animal=('cat', 'bird'))
TEACHER = osp.join(REPO, 'configs/consolidate/'
                   'masked-union-paste_retinanet_r18_fpn_1xb8-4e_synthetic.py')
STUDENT = TEACHER.replace('.py', '-consolidated.py')
REUSE = False  # set by --reuse-references
MULTI_HEAD = osp.join(REPO, 'configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py')


def generate(root: str, num_train: int, shared_look: bool) -> None:
    """The benchmark's data (once): train / held-out val / fully labelled test."""
    from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source
    if not osp.isfile(osp.join(root, 'annotations/test_full.json')):
        generate_multi_source(root, GeneratorConfig(num_train=num_train, num_val=50,
                                                    num_test=200, shared_look=shared_look,
                                                    seed=1))


def options(seed: int, epochs: int) -> list:
    return [f'randomness.seed={seed}', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}', f'default_hooks.checkpoint.interval={epochs}',
            'default_hooks.logger.interval=50']


def run_loop(work: str, seed: int, args: argparse.Namespace) -> dict:
    """``tools/consolidate_loop.py`` in ``work`` (where data/synthetic is the data)."""
    held = [f'{s}=data/synthetic/annotations/{s}_val_full.json:data/synthetic/images/{s}'
            for s in OWN]  # per source: a class is tuned where its pseudo boxes go
    cmd = [sys.executable, osp.join(REPO, 'tools/consolidate_loop.py'), TEACHER, STUDENT,
           '--work-dir', 'loop', '--rounds', str(args.rounds), '--held-out', *held,
           '--target-precision', str(args.target_precision),
           *(['--calibrate-boxes'] if args.calibrate_boxes else []),
           '--cfg-options', *options(seed, args.epochs)]
    subprocess.run(cmd, cwd=work, check=True)
    with open(osp.join(work, 'loop/loop.json')) as f:
        return json.load(f)


def train_reference(work: str, name: str, config: str, seed: int, epochs: int) -> str:
    """``tools/train.py`` one reference model in ``work``; its last checkpoint."""
    out = osp.join(work, name)
    done = osp.join(out, 'last_checkpoint')
    if REUSE and osp.isfile(done):  # --reuse-references: a finished run of the same seed
        print(f'[bench] {name}: reusing {done}', flush=True)
        with open(done) as f:
            return f.read().strip()
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', out,
           '--cfg-options', *options(seed, epochs)]
    start = time.time()
    with open(osp.join(work, f'{name}.log'), 'w') as log:
        subprocess.run(cmd, cwd=work, check=True, stdout=log, stderr=subprocess.STDOUT)
    print(f'[bench] {name} trained in {time.time() - start:.0f} s', flush=True)
    with open(osp.join(out, 'last_checkpoint')) as f:
        return f.read().strip()


def full_label_config(work: str) -> str:
    """The student's config on the fully labelled training files."""
    from mmengine.config import Config
    cfg = Config.fromfile(STUDENT)
    for source in cfg.train_dataloader.dataset.datasets:
        source['ann_file'] = f'annotations/{source["group_name"]}_train_full.json'
    path = osp.join(work, 'full_labels.py')
    cfg.dump(path)
    return path


def evaluate(config: str, checkpoint: str, root: str) -> dict:
    """bbox mAP and per-class AP (x100) on the fully labelled mixed-look test split."""
    from mmdet.apis import inference_detector, init_detector
    from mmengine.registry import METRICS
    model = init_detector(config, checkpoint, device='cpu')
    with open(osp.join(root, 'annotations/test_full.json')) as f:
        coco = json.load(f)
    metric = METRICS.build(dict(type='CocoMetric', ann_file=osp.join(
        root, 'annotations/test_full.json'), classwise=True))
    metric.dataset_meta = dict(classes=CLASSES)
    for im in coco['images']:
        sample = inference_detector(model, osp.join(root, 'images/test', im['file_name']))
        sample.set_metainfo(dict(img_id=im['id'], ori_shape=(im['height'], im['width'])))
        metric.process({}, [sample.to_dict()])
    res = metric.evaluate(len(coco['images']))  # nothing predicted at all: every AP 0
    res = res or {f'coco/{k}': 0.0 for k in ('bbox_mAP', *[f'{c}_precision' for c in CLASSES])}
    out = {k.split('/')[-1].replace('_precision', ''): round(100 * v, 1)
           for k, v in res.items() if k.endswith(('bbox_mAP', '_precision'))}
    return {'mAP' if k == 'bbox_mAP' else k: v for k, v in out.items()}


def pseudo_pr(root: str, consolidated: str) -> dict:
    """Per class, the pseudo boxes' precision / recall against the hidden objects of that
    class on the other source's training images (IoU >= 0.5, one-to-one)."""
    from mtl_plugin.analysis.consolidation import box_iou, xywh_to_xyxy
    out = {}
    for src, own in OWN.items():
        with open(osp.join(root, f'annotations/{src}_train_full.json')) as f:
            full = json.load(f)
        with open(osp.join(consolidated, f'{src}_consolidated.json')) as f:
            new = json.load(f)
        full_name = {c['id']: c['name'] for c in full['categories']}
        new_name = {c['id']: c['name'] for c in new['categories']}
        for cls in (c for c in CLASSES if c not in own):
            hidden = [a for a in full['annotations'] if full_name[a['category_id']] == cls]
            pseudo = [a for a in new['annotations'] if a.get('pseudo') and not a['iscrowd']
                      and new_name[a['category_id']] == cls]
            tp = _matches(hidden, pseudo, box_iou, xywh_to_xyxy)
            out[cls] = dict(source=src, hidden=len(hidden), pseudo=len(pseudo), tp=tp,
                            precision=round(tp / max(len(pseudo), 1), 3),
                            recall=round(tp / max(len(hidden), 1), 3))
    return out


def _matches(gt: list, pred: list, box_iou, xywh_to_xyxy) -> int:
    """One-to-one matches at IoU >= 0.5, highest score first, per image."""
    tp = 0
    for image_id in {a['image_id'] for a in pred}:
        g = [a for a in gt if a['image_id'] == image_id]
        p = sorted((a for a in pred if a['image_id'] == image_id), key=lambda a: -a['score'])
        if not g:
            continue
        iou = box_iou(xywh_to_xyxy([a['bbox'] for a in p]), xywh_to_xyxy([a['bbox'] for a in g]))
        taken = np.zeros(len(g), bool)
        for row in iou:
            row = np.where(taken, -1, row)
            if row.max() >= 0.5:
                taken[row.argmax()] = True
                tp += 1
    return tp


def one_seed(root: str, work: str, seed: int, args: argparse.Namespace) -> dict:
    """Every model of one training seed, evaluated."""
    os.makedirs(osp.join(work, 'data'), exist_ok=True)
    link = osp.join(work, 'data/synthetic')
    if not osp.exists(link):
        os.symlink(root, link)
    res = dict(models={}, pseudo={})
    loop = run_loop(work, seed, args)  # first: its teacher's recall is the early signal
    for r in loop['rounds']:
        name = 'teacher' if r['round'] == 0 else f'round{r["round"]}'
        res['models'][name] = evaluate(r['config'], r['checkpoint'], root)
        if r['round']:
            res['pseudo'][name] = dict(pseudo_pr(root, r['consolidated']), tuned=r['tuned'])
    ckpt = train_reference(work, 'multi_head', MULTI_HEAD, seed, args.epochs)
    res['models']['multi_head'] = evaluate(MULTI_HEAD, ckpt, root)
    full = full_label_config(work)
    ckpt = train_reference(work, 'full_labels', full, seed, args.epochs)
    res['models']['full_labels'] = evaluate(full, ckpt, root)
    print(json.dumps(res['models']), flush=True)
    return res


def aggregate(per_seed: list) -> dict:
    """Per model and metric (and per round and class for the pseudo-labels): mean, std
    (ddof=1; 0 for one seed), n, and the per-seed values."""
    def stats(values):
        v = np.asarray(values, float)
        return dict(mean=round(float(v.mean()), 2),
                    std=round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 2),
                    n=len(v), values=[float(x) for x in v])
    models = {m: {k: stats([s['models'][m][k] for s in per_seed])
                  for k in per_seed[0]['models'][m]} for m in per_seed[0]['models']}
    pseudo = {r: {c: {k: stats([s['pseudo'][r][c][k] for s in per_seed])
                      for k in ('precision', 'recall', 'pseudo', 'hidden')}
                  for c in per_seed[0]['pseudo'][r] if c != 'tuned'}
              for r in per_seed[0]['pseudo']}
    return dict(models=models, pseudo=pseudo)


def goals(agg: dict, rounds: int) -> dict:
    """The issue's goals, read from the means (differences inside 2 std are said so)."""
    last = agg['models'][f'round{rounds}']['mAP']
    mh, full = agg['models']['multi_head']['mAP'], agg['models']['full_labels']['mAP']
    pseudo = agg['pseudo'][f'round{rounds}']
    return dict(
        gain_vs_multi_head=round(last['mean'] - mh['mean'], 2),
        gain_goal_met=last['mean'] - mh['mean'] >= 5,
        gap_to_full_labels=round(full['mean'] - last['mean'], 2),
        gap_goal_met=full['mean'] - last['mean'] <= 5,
        gap_inside_2std=abs(full['mean'] - last['mean']) <= 2 * max(full['std'], last['std']),
        pseudo_goal_met=all(p['recall']['mean'] >= 0.7 and p['precision']['mean'] >= 0.8
                            for p in pseudo.values()))


def _cell(s: dict) -> str:
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s['n'] > 1 else f"{s['mean']:.1f}"


def report(agg: dict) -> None:
    rows = [dict(model=m, **{k: _cell(v) for k, v in r.items()})
            for m, r in agg['models'].items()]
    print_table('bbox AP x100 on the fully labelled mixed-look test split (mean ± std over '
                'seeds)', rows, ['model', 'mAP', *CLASSES])
    rows = [dict(round=r, cls=c, precision=f"{p['precision']['mean']:.3f} ± "
                 f"{p['precision']['std']:.3f}", recall=f"{p['recall']['mean']:.3f} ± "
                 f"{p['recall']['std']:.3f}", pseudo=_cell(p['pseudo']), hidden=_cell(p['hidden']))
            for r, per in agg['pseudo'].items() for c, p in per.items()]
    print_table('pseudo-labels on the other source\'s training images (vs hidden objects)',
                rows, ['round', 'cls', 'precision', 'recall', 'pseudo', 'hidden'])


def combine(paths: list, out: str, parser: argparse.ArgumentParser) -> None:
    """``--combine``: one result from parts run as separate processes (one per core)."""
    parts = []
    for path in paths:
        with open(path) as f:
            parts.append(json.load(f))
    problem = settings_mismatch(paths, [p['settings'] for p in parts],
                                {'seeds', 'out', 'work', 'combine', 'reuse_references'})
    if problem:
        parser.error(problem)
    seeds, per_seed = merge_seed_parts(paths)
    agg = aggregate(per_seed)
    rounds = parts[0]['settings']['rounds']
    save(out, dict(settings=dict(parts[0]['settings'], seeds=seeds, combined=list(paths)),
                   seeds=seeds, per_seed=per_seed, **agg, goals=goals(agg, rounds),
                   budget=parts[0]['budget'],
                   minutes=round(sum(p['minutes'] for p in parts), 1)))
    report(agg)
    print(json.dumps(goals(agg, rounds), indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--epochs', type=int, default=4, help='epochs of every model')
    parser.add_argument('--num-train', type=int, default=400, help='train images per source')
    parser.add_argument('--target-precision', type=float, default=0.8)
    parser.add_argument('--look', choices=('shifted', 'shared'), default='shifted')
    parser.add_argument('--work', default='/tmp/bench_consolidation_loop')
    parser.add_argument('--out', default=osp.join(REPO,
                                                  'benchmarks/results/consolidation_loop.json'))
    parser.add_argument('--reuse-references', action='store_true',
                        help='keep reference models already trained in --work (same seed)')
    parser.add_argument('--calibrate-boxes', action=argparse.BooleanOptionalAction,
                        default=True, help='the loop\'s --calibrate-boxes (pseudo boxes '
                        'corrected by their median offset on the held-out images)')
    parser.add_argument('--combine', nargs='+', default=None, metavar='JSON',
                        help='merge the seeds of runs made as separate processes (same '
                        'settings, other --seeds) into --out, and report')
    args = parser.parse_args()
    if args.combine:
        return combine(args.combine, args.out, parser)
    global REUSE
    REUSE = args.reuse_references
    root = osp.join(args.work, f'data_{args.look}')
    generate(root, args.num_train, args.look == 'shared')
    start, per_seed = time.time(), []
    for seed in args.seeds:
        per_seed.append(one_seed(root, osp.join(args.work, f'{args.look}_seed{seed}'), seed,
                                 args))
        agg = aggregate(per_seed)
        save(args.out, dict(settings=vars(args), seeds=args.seeds[:len(per_seed)],
                            per_seed=per_seed, **agg, goals=goals(agg, args.rounds),
                            budget=f'every model: {args.epochs} epochs over '
                            f'{2 * args.num_train} images, batch 8; the loop trains '
                            f'{args.rounds + 1} models in all', minutes=round(
                                (time.time() - start) / 60, 1)))
    report(agg)
    print(json.dumps(goals(agg, args.rounds), indent=1))


if __name__ == '__main__':
    main()
