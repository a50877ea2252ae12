"""Data-tool studies on generated data where the missing labels and the label noise are known
(issue: evaluation and data tools, item 7), plus the collected speed results.

Consolidation study: a multi-head detector trained on the partial labels (give its config and
checkpoint, e.g. the ablation baseline of benchmarks/mtl.py) consolidates each source's
training file after known noise was injected into it (drops, class swaps, shifted boxes):

* precision / recall of the pseudo-labels against the hidden objects (``*_train_full.json``,
  IoU >= 0.5, same class);
* recall of the injected noise among the flagged labels (a swap or a shifted box flagged at
  its annotation, a dropped label found as ``possibly_missing_label`` at its box);
* with ``--retrain-epochs N``: a union-label RetinaNet retrained on the consolidated files
  vs on the partial ones (same noisy ground truth, same budget), bbox mAP on the sources'
  fully labelled val files (``*_val_full.json``), once per training seed (``--seeds``, default
  0 1 2; the injected noise is fixed by ``--seed``): mean ± sample std, consolidated vs
  partial on the paired per-seed differences (inside 2 std: no difference). The data-map
  study (``--data-map-epochs``) runs per training seed too.

The speed results of ``dt_report.py`` (report vs a pycocotools load) and ``dt_data_map.py``
(recording overhead) are read from their JSON files and shown in the same table.

Usage:
    python benchmarks/data_tools.py --config CFG --checkpoint CKPT --data DATA_ROOT
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
from common import (fmt_pm, print_seed_table, print_table, run_seeds,  # noqa: E402
                    save, versus)
from mtl_plugin.analysis.consolidation import box_iou, xywh_to_xyxy  # noqa: E402
from mtl_plugin.analysis.label_noise import inject_label_noise  # noqa: E402

CLASSES = ('person', 'cat', 'bird')


def _noisy_root(data: str, work: str, rate: float, seed: int) -> dict:
    """A copy of the annotation files with noise in each source's train file."""
    root = osp.join(work, 'noisy')
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    if not osp.exists(osp.join(root, 'images')):
        os.symlink(osp.join(data, 'images'), osp.join(root, 'images'))
    records = {}
    for src in ('person', 'animal'):
        with open(osp.join(data, 'annotations', f'{src}_train.json')) as f:
            coco = json.load(f)
        noisy, records[src] = inject_label_noise(coco, rate, seed=seed)
        with open(osp.join(root, 'annotations', f'{src}_train.json'), 'w') as f:
            json.dump(noisy, f)
    return dict(root=root, records=records)


def _pseudo_pr(data: str, out: str) -> dict:
    """Pseudo-label precision / recall against the hidden objects, per source."""
    res = {}
    for src in ('person', 'animal'):
        with open(osp.join(data, 'annotations', f'{src}_train_full.json')) as f:
            full = json.load(f)
        with open(osp.join(out, f'{src}_consolidated.json')) as f:
            new = json.load(f)
        hidden = [a for a in full['annotations'] if a['hidden']]
        pseudo = [a for a in new['annotations'] if a.get('pseudo') and not a['iscrowd']]
        tp, matched = 0, set()
        for p in pseudo:
            cands = [h for h in hidden if h['image_id'] == p['image_id'] and
                     h['category_id'] == p['category_id'] and h['id'] not in matched]
            if cands:
                iou = box_iou(xywh_to_xyxy([p['bbox']]), xywh_to_xyxy([h['bbox'] for h in cands]))[0]
                if iou.max() >= 0.5:
                    tp += 1
                    matched.add(cands[int(iou.argmax())]['id'])
        res[src] = dict(hidden=len(hidden), pseudo=len(pseudo), tp=tp,
                        precision=tp / max(len(pseudo), 1), recall=tp / max(len(hidden), 1),
                        ignore_regions=sum(1 for a in new['annotations']
                                           if a.get('pseudo') and a['iscrowd']))
    return res


def _noise_recall(records: dict, data: str, out: str) -> dict:
    """Fraction of the injected errors that the review flags, per kind."""
    import csv
    with open(osp.join(out, 'review.csv')) as f:
        rows = [r for r in csv.DictReader(f) if r['kind'] not in ('pseudo', 'ignore')]
    found = {k: [0, 0] for k in ('drop', 'swap_class', 'shift_box')}
    for src, recs in records.items():
        with open(osp.join(data, 'annotations', f'{src}_train.json')) as f:
            anns = {a['id']: a for a in json.load(f)['annotations']}
        mine = [r for r in rows if r['source'] == src]
        for rec in recs:
            found[rec['kind']][1] += 1
            if rec['kind'] == 'drop':
                box = xywh_to_xyxy([anns[rec['ann_id']]['bbox']])
                hit = any(r['kind'] == 'possibly_missing_label' and
                          int(r['image_id']) == rec['image_id'] and
                          box_iou(box, xywh_to_xyxy([[float(v) for v in r['bbox'].split()]]))[0, 0]
                          >= 0.5 for r in mine)
            else:
                hit = any(r['ann_id'] and int(float(r['ann_id'])) == rec['ann_id'] for r in mine)
            found[rec['kind']][0] += int(hit)
    flagged = len(rows)
    total = sum(v[1] for v in found.values())
    hits = sum(v[0] for v in found.values())
    return dict(per_kind={k: dict(found=v[0], injected=v[1]) for k, v in found.items()},
                recall=hits / max(total, 1), flagged=flagged,
                precision_of_flags=hits / max(flagged, 1))


UNION = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py')
CONSOLIDATED = osp.join(REPO, 'configs/consolidate/'
                        'retinanet_r18_fpn_1xb8-4e_synthetic-consolidated.py')


def _full_val_map(data: str, preds_pkl: str) -> dict:
    """bbox mAP of union-label predictions on each source's fully labelled val file."""
    import pickle

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with open(preds_pkl, 'rb') as f:
        dumped = pickle.load(f)
    out = {}
    for src in ('person', 'animal'):
        gt = COCO(osp.join(data, 'annotations', f'{src}_val_full.json'))
        dets = [dict(image_id=int(d['img_id']), category_id=int(lab) + 1,
                     bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                     score=float(sc))
                for d in dumped if d.get('group_name') == src
                for b, sc, lab in zip(d['pred_instances']['bboxes'].tolist(),
                                      d['pred_instances']['scores'].tolist(),
                                      d['pred_instances']['labels'].tolist())]
        ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        out[src] = float(ev.stats[0])
    out['mean'] = (out['person'] + out['animal']) / 2
    return out


def retrain_study(data: str, noisy_root: str, consolidated: str, work: str,
                  epochs: int, seed: int = 0) -> dict:
    """Union-label RetinaNet trained on the (noisy) partial files vs on the consolidated
    ones, same budget and training seed; mAP on the fully labelled val files."""
    env = dict(os.environ, PYTHONPATH=REPO)
    res = {}
    for name, config, extra in (
            ('partial', UNION, []),
            ('consolidated', CONSOLIDATED,
             [f'train_dataloader.dataset.datasets.{i}.ann_file={consolidated}/{g}_consolidated.json'
              for i, g in enumerate(('person', 'animal'))])):
        wd = osp.join(work, f'retrain_{name}_s{seed}')
        opts = [f'train_dataloader.dataset.datasets.{i}.data_root={noisy_root}/' for i in (0, 1)]
        # test_dataloader is a copy of val_dataloader made when the config was parsed
        opts += [f'{split}_dataloader.dataset.datasets.{i}.data_root={data}/'
                 for split in ('val', 'test') for i in (0, 1)]
        opts += [f'{split}_evaluator.metrics.{g}.ann_file={data}/annotations/{g}_val.json'
                 for split in ('val', 'test') for g in ('person', 'animal')]
        opts += [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
                 f'randomness.seed={seed}',
                 f'default_hooks.checkpoint.interval={epochs}'] + extra
        if not osp.exists(osp.join(wd, f'epoch_{epochs}.pth')):
            subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), config,
                            '--work-dir', wd, '--cfg-options', *opts], check=True, env=env)
        pkl = osp.join(wd, 'val_preds.pkl')
        subprocess.run([sys.executable, osp.join(REPO, 'tools/test.py'), config,
                        osp.join(wd, f'epoch_{epochs}.pth'), '--out', pkl, '--cfg-options',
                        *opts], check=True, env=env)
        res[name] = _full_val_map(data, pkl)
    return res


def data_map_study(config: str, data: str, noisy: dict, work: str, epochs: int,
                   seed: int = 0) -> dict:
    """Train with DataMapHook on the noisy files; recall of the injected label errors that
    still exist as labels (swaps, shifts) among the lowest-confidence labels."""
    import csv
    env = dict(os.environ, PYTHONPATH=REPO)
    cfg = osp.join(work, 'data_map_cfg.py')
    with open(cfg, 'w') as f:
        f.write(f"_base_ = ['{osp.abspath(config)}']\ncustom_hooks = [dict(type='HeadIsolationHook'), "
                "dict(type='DataMapHook')]\n")
    wd = osp.join(work, f'data_map_run_s{seed}')
    opts = [f'train_dataloader.dataset.datasets.{i}.data_root={noisy["root"]}/' for i in (0, 1)]
    opts += [f'val_dataloader.dataset.datasets.{i}.data_root={data}/' for i in (0, 1)]
    opts += [f'val_evaluator.metrics.{g}.ann_file={data}/annotations/{g}_val.json'
             for g in ('person', 'animal')]
    opts += [f'train_cfg.max_epochs={epochs}', f'randomness.seed={seed}']
    subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), cfg, '--work-dir', wd,
                    '--cfg-options', *opts], check=True, env=env)
    out = osp.join(work, f'data_map_out_s{seed}')
    subprocess.run([sys.executable, osp.join(REPO, 'tools/analysis/data_map.py'), wd,
                    '--out-dir', out], check=True, env=env)
    with open(osp.join(out, 'scored_labels.csv')) as f:
        rows = list(csv.DictReader(f))  # lowest confidence first
    noisy_ids = {(src, rec['ann_id']) for src, recs in noisy['records'].items()
                 for rec in recs if rec['kind'] != 'drop'}
    k = len(noisy_ids)
    lowest = {(r['group'], int(float(r['ann_id']))) for r in rows[:k] if r['ann_id']}
    hard = {(r['group'], int(float(r['ann_id']))) for r in rows
            if r['region'] == 'hard-to-learn' and r['ann_id']}
    return dict(labels=len(rows), noisy_labels=k, epochs=epochs,
                recall_at_k=len(lowest & noisy_ids) / max(k, 1),
                chance_at_k=k / max(len(rows), 1),
                hard_to_learn=len(hard), noisy_in_hard=len(hard & noisy_ids))


RETRAIN_METRICS = ('person', 'animal', 'mean')


def retrain_over_seeds(study, seeds) -> dict:
    """Run ``study(seed) -> {partial, consolidated} -> mAP`` per training seed; mean ± std and
    consolidated vs partial (paired per-seed differences, inside 2 std: no difference)."""
    res = run_seeds(study, seeds)
    res['consolidated_vs_partial'] = versus(res['stats'], 'partial', RETRAIN_METRICS)[
        'consolidated']
    print_seed_table(f'retrained union RetinaNet, mAP on fully labelled val, seeds '
                     f'{res["seeds"]}', res['stats'], RETRAIN_METRICS, ref='partial',
                     key='labels', digits=3)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True)
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--data', required=True, help='generated data root (with *_full files)')
    parser.add_argument('--noise-rate', type=float, default=0.1)
    parser.add_argument('--seed', type=int, default=0, help='seed of the injected label noise')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='training seeds of the retrain and data-map studies')
    parser.add_argument('--high', type=float, default=0.5)
    parser.add_argument('--low', type=float, default=0.2)
    parser.add_argument('--work', default=None)
    parser.add_argument('--data-map-epochs', type=int, default=0,
                        help='> 0: only the data-map study (merged into --out)')
    parser.add_argument('--retrain-epochs', type=int, default=0,
                        help='> 0: also retrain a union head on partial vs consolidated labels')
    parser.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/data_tools.json'))
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix='bench_dt_')
    noisy = _noisy_root(args.data, work, args.noise_rate, args.seed)
    if args.data_map_epochs > 0:
        dm = run_seeds(lambda seed: data_map_study(args.config, args.data, noisy, work,
                                                   args.data_map_epochs, seed), args.seeds)
        print_table('data map: injected label errors among the lowest-confidence labels',
                    [dict(what=k, value=v) for k, v in dm['stats'].items()], ['what', 'value'])
        with open(args.out) as f:
            payload = json.load(f)
        payload['data_map'] = dict(dm, noise_rate=args.noise_rate, noise_seed=args.seed)
        with open(args.out, 'w') as f:
            json.dump(payload, f, indent=1)
        return
    out = osp.join(work, 'consolidated')
    opts = [f'train_dataloader.dataset.datasets.{i}.data_root={noisy["root"]}/' for i in (0, 1)]
    subprocess.run([sys.executable, osp.join(REPO, 'tools/consolidate.py'), args.config,
                    args.checkpoint, '--out-dir', out, '--high', str(args.high), '--low',
                    str(args.low), '--cfg-options', *opts], check=True,
                   env=dict(os.environ, PYTHONPATH=REPO))
    pr = _pseudo_pr(args.data, out)
    noise = _noise_recall(noisy['records'], args.data, out)
    rows = [dict(what=f'pseudo-labels {s} (missing labels: {v["hidden"]})',
                 precision=v['precision'], recall=v['recall'], count=v['pseudo'])
            for s, v in pr.items()]
    rows.append(dict(what=f'injected noise flagged ({args.noise_rate:.0%} of labels)',
                     precision=noise['precision_of_flags'], recall=noise['recall'],
                     count=noise['flagged']))
    retrain = None
    if args.retrain_epochs > 0:
        retrain = retrain_over_seeds(lambda seed: retrain_study(
            args.data, noisy['root'], out, work, args.retrain_epochs, seed), args.seeds)
        for name, v in retrain['stats'].items():
            rows.append(dict(what=f'retrained union RetinaNet on {name} labels: mAP on fully '
                             f'labelled val (person / animal / mean)',
                             count=' / '.join(fmt_pm(v[k], 3) for k in RETRAIN_METRICS)))
    speed = {}
    for name in ('dt_report', 'dt_data_map'):
        path = osp.join(REPO, 'benchmarks/results', f'{name}.json')
        if osp.exists(path):
            with open(path) as f:
                speed[name] = json.load(f)
    if 'dt_report' in speed:
        rows.append(dict(what='dataset_report / pycocotools load, 118k images',
                         ratio=speed['dt_report']['result']['ratio']))
    if 'dt_data_map' in speed:
        for r in speed['dt_data_map']['results']:
            rows.append(dict(what=f'data map recording overhead ({r["state"]})',
                             ratio=1 + r['overhead_pct'] / 100))
    print_table('data tools on generated data (known missing labels and noise)', rows,
                ['what', 'precision', 'recall', 'count', 'ratio'])
    save(args.out, dict(settings=vars(args), pseudo_labels=pr, noise=noise, retrain=retrain,
                        noise_records={k: len(v) for k, v in noisy['records'].items()}))


if __name__ == '__main__':
    np.set_printoptions(precision=3)
    main()
