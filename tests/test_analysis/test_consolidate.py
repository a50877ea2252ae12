"""Consolidation: oracle predictions recover the hidden labels exactly; noise is flagged;
threshold tuning; the CLI (dumped predictions and the model path), inputs untouched."""
import glob
import hashlib
import json
import os.path as osp
import pickle
import subprocess

import numpy as np
import pytest
import torch

from conftest import PYTHON, REPO, run_tool
from mtl_plugin.analysis.consolidation import (ConsolidationError, Thresholds, box_pairs,
                                               calibrated_boxes, consolidate_source,
                                               fit_box_calibration, match_predictions,
                                               tune_thresholds,
                                               xywh_to_xyxy)
from mtl_plugin.analysis.label_noise import inject_label_noise

CLASSES = ('person', 'cat', 'bird')  # the generator's unified order
DEMO = osp.join(REPO, 'configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py')
TOOL = osp.join(REPO, 'tools', 'consolidate.py')


def _load(root, key):
    with open(osp.join(root, 'annotations', f'{key}.json')) as f:
        return json.load(f)


def _oracle(full, extra_other=None):
    """Every object of the fully labelled file predicted at 0.95 (hidden ones included),
    plus per image one 0.5 box of class ``extra_other`` in an empty corner."""
    preds = {}
    for im in full['images']:
        anns = [a for a in full['annotations'] if a['image_id'] == im['id']]
        boxes = xywh_to_xyxy([a['bbox'] for a in anns])
        labels = [a['category_id'] - 1 for a in anns]
        scores = [0.95] * len(anns)
        if extra_other is not None:
            boxes = np.concatenate([boxes, [[0, 0, 3, 3]]]).astype(np.float32)
            labels.append(CLASSES.index(extra_other))
            scores.append(0.5)
        preds[im['id']] = dict(bboxes=boxes, scores=np.array(scores, np.float32),
                               labels=np.array(labels))
    return preds


@pytest.mark.parametrize('source,other', [('person', 'cat'), ('animal', 'person')])
def test_oracle_recovers_hidden_labels_exactly(synthetic_root, source, other):
    part, full = _load(synthetic_root, f'{source}_train'), _load(synthetic_root,
                                                                  f'{source}_train_full')
    new, rows = consolidate_source(part, CLASSES, _oracle(full, other), Thresholds(0.8, 0.3),
                                   source)
    hidden = sorted((a['image_id'], a['category_id'], tuple(a['bbox']))
                    for a in full['annotations'] if a['hidden'])
    pseudo = sorted((a['image_id'], a['category_id'], tuple(a['bbox']))
                    for a in new['annotations'] if a.get('pseudo') and not a['iscrowd'])
    assert len(hidden) > 0 and pseudo == hidden  # precision and recall 1
    ignores = [a for a in new['annotations'] if a.get('pseudo') and a['iscrowd']]
    assert len(ignores) == len(part['images'])  # the 0.5 corner boxes
    assert all(a['score'] == 0.5 and a['bbox'] == [0.0, 0.0, 3.0, 3.0] for a in ignores)
    # ground truth unchanged: ids, boxes, and categories remapped by name
    names = {c['id']: c['name'] for c in part['categories']}
    kept = [a for a in new['annotations'] if not a.get('pseudo')]
    assert [(a['id'], a['bbox'], CLASSES[a['category_id'] - 1]) for a in kept] == \
        [(a['id'], a['bbox'], names[a['category_id']]) for a in part['annotations']]
    assert [c['name'] for c in new['categories']] == list(CLASSES)
    assert {r['kind'] for r in rows} == {'pseudo', 'ignore'}  # nothing suspicious
    # a pseudo box never duplicates GT: predicting a GT box as another class adds nothing
    im = part['annotations'][0]['image_id']
    gt = xywh_to_xyxy([part['annotations'][0]['bbox']])
    dup = {im: dict(bboxes=gt, scores=np.array([0.99], np.float32),
                    labels=np.array([CLASSES.index(other)]))}
    again, _ = consolidate_source(part, CLASSES, dup, Thresholds(), source)
    assert len(again['annotations']) == len(part['annotations'])


def test_injected_noise_is_flagged(synthetic_root):
    part, full = _load(synthetic_root, 'animal_train'), _load(synthetic_root, 'animal_train_full')
    noisy, records = inject_label_noise(part, 0.3, kinds=('drop', 'swap_class'), seed=1)
    assert records and noisy != part and part == _load(synthetic_root, 'animal_train')
    _, rows = consolidate_source(noisy, CLASSES, _oracle(full), Thresholds(), 'animal')
    flagged = {(r['kind'], r['ann_id']) for r in rows}
    by_box = {(r['image_id'], tuple(round(v) for v in r['bbox'])) for r in rows
              if r['kind'] == 'possibly_missing_label'}
    anns = {a['id']: a for a in part['annotations']}
    for rec in records:
        if rec['kind'] == 'swap_class':
            assert ('label_mismatch', rec['ann_id']) in flagged
        else:  # a dropped own-class label: the confident detection has no GT any more
            box = tuple(round(v) for v in anns[rec['ann_id']]['bbox'])
            assert (rec['image_id'], box) in by_box
    flags = [r for r in rows if r['kind'] not in ('pseudo', 'ignore')]
    assert len(flags) == len(records)  # and nothing else is flagged


def test_inject_label_noise_deterministic_and_errors(synthetic_root):
    part = _load(synthetic_root, 'animal_train')
    a, ra = inject_label_noise(part, 0.25, seed=3)
    b, rb = inject_label_noise(part, 0.25, seed=3)
    assert a == b and ra == rb and len(ra) == round(0.25 * len(part['annotations']))
    with pytest.raises(ValueError, match='rate'):
        inject_label_noise(part, 1.5)
    with pytest.raises(ValueError, match="'swap_class' needs"):
        inject_label_noise(_load(synthetic_root, 'person_train'), 0.1, kinds=('swap_class', ))
    _, rec = inject_label_noise(_load(synthetic_root, 'person_train'), 0.5, seed=0)
    assert rec and {r['kind'] for r in rec} <= {'drop', 'shift_box'}


def test_tune_thresholds_hand_case():
    coco = dict(images=[dict(id=1, width=100, height=100)],
                categories=[dict(id=1, name='person'), dict(id=2, name='cat')],
                annotations=[dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10]),
                             dict(id=2, image_id=1, category_id=1, bbox=[50, 50, 10, 10])])
    # person: TP 0.9, FP 0.7, TP 0.6, FP 0.3 -> precision at t: 0.35..0.6 -> 2/3, 0.65..0.7
    # -> 1/2, 0.75..0.9 -> 1; cat: one FP
    preds = {1: dict(bboxes=np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60],
                                      [80, 80, 90, 90], [0, 0, 10, 10]], np.float32),
                     scores=np.array([0.9, 0.7, 0.6, 0.3, 0.8], np.float32),
                     labels=np.array([0, 0, 0, 0, 1]))}
    assert tune_thresholds(coco, ('person', 'cat'), preds, 0.9) == dict(person=0.75, cat=None)
    assert tune_thresholds(coco, ('person', 'cat'), preds, 0.6)['person'] == 0.35
    with pytest.raises(ConsolidationError, match='target_precision'):
        tune_thresholds(coco, ('person', 'cat'), preds, 0.0)
    with pytest.raises(ConsolidationError, match='low <= high'):
        Thresholds(0.3, 0.8)


def _biased(preds, scale=0.8, shift=0.05):
    """``preds`` with every box shrunk to ``scale`` of its size and its centre moved right
    by ``shift`` of the object's width: a model's systematic box bias."""
    out = {}
    for k, p in preds.items():
        b = np.asarray(p['bboxes'], np.float32)
        c, wh = (b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]
        c = c + np.stack([shift * wh[:, 0], np.zeros(len(b))], 1)
        out[k] = dict(p, bboxes=np.concatenate([c - scale * wh / 2, c + scale * wh / 2],
                                               1).astype(np.float32))
    return out


def test_box_calibration_undoes_a_systematic_bias(synthetic_root):
    val, part, full = (_load(synthetic_root, k) for k in ('person_val_full', 'person_train',
                                                          'person_train_full'))
    pairs = box_pairs(match_predictions(val, CLASSES, _biased(_oracle(val))), CLASSES,
                      dict(cat=0.9, bird=0.99))
    assert len(pairs['cat'][0]) == sum(a['category_id'] == 2 for a in val['annotations'])
    assert len(pairs['bird'][0]) == 0  # every prediction scores 0.95 < 0.99
    fitted = fit_box_calibration(pairs, min_pairs=1)
    # DeltaXYWH from the biased box to the object: dx = -0.05 / 0.8, dw = dh = log(1 / 0.8)
    assert fitted['cat'] == pytest.approx([-0.0625, 0.0, 0.2231, 0.2231], abs=1e-4)
    assert fitted['bird'] is None
    assert fit_box_calibration(pairs, min_pairs=10 ** 6)['cat'] is None
    # consolidation with the fitted correction puts the pseudo boxes back on the objects
    biased = _biased(_oracle(full))
    hidden = sorted((a['image_id'], a['category_id'], *a['bbox'])
                    for a in full['annotations'] if a['hidden'])
    for calibration, err in ((None, 0.05 * 10), (fitted, 0.01)):
        new, _ = consolidate_source(part, CLASSES, biased, Thresholds(0.8, 0.3), 'person',
                                    calibration=calibration)
        pseudo = sorted((a['image_id'], a['category_id'], *a['bbox'])
                        for a in new['annotations'] if a.get('pseudo'))
        cats = [(h, p) for h, p in zip(hidden, pseudo) if h[1] == 2]
        assert len(pseudo) == len(hidden) and cats
        worst = max(abs(x - y) for h, p in cats for x, y in zip(h[2:], p[2:]))
        assert worst < err if calibration else worst > 0.5  # the bias is gone / was there
    b = _biased(_oracle(full))[full['images'][0]['id']]
    assert np.array_equal(calibrated_boxes(b['bboxes'], b['labels'], CLASSES, {}),
                          b['bboxes'])  # no correction: unchanged
    with pytest.raises(ConsolidationError, match=r"classes \['dog'\]"):
        calibrated_boxes(b['bboxes'], b['labels'], CLASSES, dict(dog=[0, 0, 0, 0]))
    with pytest.raises(ConsolidationError, match="class 'cat': 2 predicted boxes but 1"):
        fit_box_calibration(dict(cat=(np.zeros((2, 4)), np.zeros((1, 4)))))
    with pytest.raises(ConsolidationError, match='min_pairs'):
        fit_box_calibration(pairs, min_pairs=0)


def _hashes(root):
    return {f: hashlib.sha256(open(f, 'rb').read()).hexdigest()
            for f in glob.glob(osp.join(root, '**', '*'), recursive=True) if osp.isfile(f)}


def _error_lines(stderr):
    """stderr without the third-party import warnings; no traceback allowed."""
    assert 'Traceback' not in stderr, stderr
    return [l for l in stderr.strip().splitlines() if not ('Warning' in l or l.startswith(' '))]


def _roots(root):
    return [f'train_dataloader.dataset.datasets.{i}.data_root={root}/' for i in (0, 1)]


@pytest.mark.slow
def test_cli_with_dumped_predictions(synthetic_root, tmp_path):
    before = _hashes(synthetic_root)
    dump = []
    for group, other in (('person', 'cat'), ('animal', 'person')):
        for img_id, p in _oracle(_load(synthetic_root, f'{group}_train_full'), other).items():
            dump.append(dict(img_id=img_id, group_name=group, pred_instances=dict(
                bboxes=torch.from_numpy(p['bboxes']), scores=torch.from_numpy(p['scores']),
                labels=torch.from_numpy(p['labels']))))
    pkl = tmp_path / 'preds.pkl'
    pkl.write_bytes(pickle.dumps(dump))
    out = tmp_path / 'out'
    run_tool([PYTHON, TOOL, DEMO, '--predictions', str(pkl), '--out-dir', str(out),
              '--cfg-options', *_roots(synthetic_root)])
    summary = json.loads((out / 'summary.json').read_text())
    for group in ('person', 'animal'):
        full = _load(synthetic_root, f'{group}_train_full')
        assert summary['sources'][group]['pseudo'] == sum(a['hidden'] for a in full['annotations'])
        new = json.loads((out / f'{group}_consolidated.json').read_text())
        assert len(new['annotations']) == len(full['annotations']) + len(full['images'])
    assert (out / 'review.png').read_bytes()[:4] == b'\x89PNG'
    assert (out / 'review.csv').read_text().startswith('image_id,ann_id,source,class,kind')
    assert _hashes(synthetic_root) == before
    # predictions of other images: one clear line
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(pickle.dumps([dict(d, img_id=d['img_id'] + 10**6) for d in dump]))
    proc = subprocess.run([PYTHON, TOOL, DEMO, '--predictions', str(bad), '--out-dir',
                           str(out), '--cfg-options', *_roots(synthetic_root)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and _error_lines(proc.stderr) == [
        f"consolidate.py: error: the predictions do not match "
        f"{osp.join(synthetic_root, 'annotations', 'person_train.json')!r}: no image id in common"]


@pytest.mark.slow
def test_cli_model_path_and_errors(synthetic_root, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(DEMO).model)
    ckpt = tmp_path / 'random.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'out'
    proc = run_tool([PYTHON, TOOL, DEMO, str(ckpt), '--out-dir', str(out), '--low', '0.0',
                     '--high', '0.02', '--cfg-options', *_roots(synthetic_root)])
    assert '[consolidate] person:' in proc.stdout
    assert (out / 'person_consolidated.json').exists() and (out / 'animal_consolidated.json').exists()
    nogroups = tmp_path / 'nogroups.py'
    nogroups.write_text(f"_base_ = ['{DEMO}']\ntrain_dataloader = dict(dataset=dict("
                        "_delete_=True, type='CocoDataset', ann_file='a.json'))\n")
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    bad_pkl = tmp_path / 'bad.pkl'
    bad_pkl.write_bytes(b'\x80\x04not a pickle')
    bad_cfg = tmp_path / 'bad.py'
    bad_cfg.write_text('model = dict(\n')
    for args, msg in [([DEMO, str(tmp_path / 'nope.pth')], 'does not exist'),
                      ([DEMO, str(truncated), '--cfg-options', *_roots(synthetic_root)],
                       f'checkpoint {str(truncated)!r} cannot be loaded'),
                      ([DEMO, '--predictions', str(bad_pkl), '--cfg-options',
                        *_roots(synthetic_root)], 'cannot be read: '),
                      ([str(bad_cfg), str(ckpt)], f'config {str(bad_cfg)!r} cannot be read'),
                      ([DEMO], 'give the trained checkpoint'),
                      ([str(nogroups), str(ckpt)], 'the config has no groups'),
                      ([DEMO, str(ckpt), '--thr', 'person=0.9'], '--thr wants'),
                      ([DEMO, str(ckpt), '--calibrate-boxes'], 'give --tune-on')]:
        proc = subprocess.run([PYTHON, TOOL, *args, '--out-dir', str(out)], cwd=REPO,
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        lines = _error_lines(proc.stderr)
        assert len(lines) == 1 and msg in lines[0], proc.stderr
    assert 'usage' in run_tool([PYTHON, TOOL, '--help']).stdout


def test_the_output_set_is_written_atomically(synthetic_root, tmp_path, monkeypatch):
    """Issue 12: a run killed mid-way left new and stale files mixed under one summary."""
    import os
    from mtl_plugin.analysis import consolidation_run as run
    sources = [dict(name=g, ann_file=osp.join(synthetic_root, 'annotations', f'{g}_train.json'),
                    img_dir=osp.join(synthetic_root, 'images', g)) for g in ('person', 'animal')]
    preds = {(g, i): p for g, o in (('person', 'cat'), ('animal', 'person'))
             for i, p in _oracle(_load(synthetic_root, f'{g}_train_full'), o).items()}
    out = tmp_path / 'out'
    first = run.run_consolidation(sources, CLASSES, preds, Thresholds(0.8, 0.3), str(out), 4)
    assert first['sources']['person']['file'] == str(out / 'person_consolidated.json')
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    assert sorted(before) == ['animal_consolidated.json', 'person_consolidated.json',
                              'review.csv', 'review.png', 'summary.json']
    # killed while writing the review (every consolidated file already written)
    monkeypatch.setattr(run, '_write_review', lambda *a: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        run.run_consolidation(sources, CLASSES, {k: dict(v, scores=v['scores'] * 0 + 0.99)
                                                 for k, v in preds.items()},
                              Thresholds(0.5, 0.3), str(out), 4)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before  # all old, no staging
