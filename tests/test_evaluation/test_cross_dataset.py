"""Cross-dataset matrix: oracle predictions with exact mAPs, pycocotools run directly,
per-head predictions of a real MultiHeadDetector, the CLI."""
import contextlib
import copy
import importlib.util
import io
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import tiny_models
from conftest import PYTHON, REPO, run_tool
from mtl_plugin.evaluation.cross_dataset import (CrossDatasetError, complete_coco_gt,
                                                 matrix_from_predictions, matrix_markdown,
                                                 predict_per_head)

TOOL = osp.join(REPO, 'tools', 'analysis', 'cross_dataset_eval.py')
RECALL_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)


def _gt(images, anns, cats):
    """COCO GT dict; anns = [(image_id, category_id, [x, y, w, h])]."""
    return dict(images=[dict(id=i, file_name=f'{i}.jpg', width=100, height=100) for i in images],
                annotations=[dict(id=k + 1, image_id=i, category_id=c, bbox=b,
                                  area=b[2] * b[3], iscrowd=0)
                             for k, (i, c, b) in enumerate(anns)],
                categories=[dict(id=i, name=n) for i, n in cats])


def _oracle(gt, label_of, images=None, score=1.0):
    """Detections = the GT boxes (of ``images``), labels in the head's classes."""
    names = {c['id']: c['name'] for c in gt['categories']}
    return [dict(image_id=a['image_id'], bbox=list(a['bbox']), score=score,
                 label=label_of[names[a['category_id']]])
            for a in gt['annotations'] if images is None or a['image_id'] in images]


def _pycocotools(gt, dets, cat_ids):
    """bbox mAP by pycocotools directly (dets carry category_id)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = complete_coco_gt(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(dets)), 'bbox')
        ev.params.catIds = cat_ids
        ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats[0]


def _ap_at_recall(recall):
    """AP of a ranking with precision 1 up to ``recall`` and nothing after (101 points)."""
    return float(np.sum(RECALL_THRS <= recall)) / len(RECALL_THRS)


# ---------------------------------------------------------------------- the pure function
def test_oracle_matrix_exact_values():
    person = [(1, 'person')]
    coco = _gt([1, 2], [(1, 1, [10, 10, 20, 40]), (1, 1, [50, 10, 20, 40]),
                        (2, 1, [5, 5, 30, 30])], person)
    # a second person dataset sharing image 1 (same boxes) plus an image of its own
    crowd = _gt([1, 3], [(1, 1, [10, 10, 20, 40]), (1, 1, [50, 10, 20, 40]),
                         (3, 1, [0, 0, 10, 20])], person)
    # 'kitty' is the zoo's name for cat; dogs are not predicted by any head
    zoo = _gt([10], [(10, 7, [10, 10, 30, 30]), (10, 3, [50, 50, 30, 30])],
              [(7, 'kitty'), (3, 'dog')])
    heads = dict(person=['person'], animal=['cat'], both=['cat', 'person'])
    preds = dict(
        person=dict(coco=_oracle(coco, dict(person=0)),
                    crowd=_oracle(coco, dict(person=0), images={1}),  # misses image 3
                    zoo=[dict(image_id=10, bbox=[0, 0, 5, 5], score=0.9, label=0)]),
        animal=dict(zoo=_oracle(zoo, dict(kitty=0, dog=0))[:1]
                    + [dict(image_id=10, bbox=[80, 0, 10, 10], score=0.3, label=0)]),
        # confident cats on COCO images: COCO has no cat, so they must not count
        both=dict(coco=_oracle(coco, dict(person=1))
                  + [dict(image_id=1, bbox=[0, 60, 30, 30], score=1.0, label=0)]))
    result = matrix_from_predictions(preds, heads, dict(coco=coco, crowd=crowd, zoo=zoo),
                                     class_map=dict(zoo=dict(kitty='cat')))
    assert result['heads'] == ['person', 'animal', 'both']
    assert result['evals'] == ['coco', 'crowd', 'zoo']
    one = pytest.approx(1.0, abs=1e-15)  # pycocotools' precision: tp / (tp + fp + eps)
    assert result['matrix'] == [[one, pytest.approx(67 / 101, abs=1e-15), None],
                                [None, None, one],
                                [one, 0.0, 0.0]]  # "both" predicted nothing there
    assert _ap_at_recall(2 / 3) == 67 / 101
    cells = result['cells']
    assert cells['person']['zoo'] == dict(bbox_mAP=None, bbox_mAP_50=None, shared_classes=[],
                                          reason='no shared class')
    assert cells['animal']['zoo']['shared_classes'] == ['cat']  # dog is not shared
    assert cells['both']['coco']['num_dets'] == 3  # the cat boxes were dropped
    assert cells['both']['crowd'] == dict(num_gt=3, num_dets=0, bbox_mAP=0.0, bbox_mAP_50=0.0,
                                          shared_classes=['person'])
    # pycocotools on the same detections, restricted to the shared categories
    assert result['matrix'][0][1] == _pycocotools(
        crowd, [dict(d, category_id=1) for d in preds['person']['crowd']], [1])
    zoo_dets = [dict(d, category_id=7) for d in preds['animal']['zoo']]
    assert result['matrix'][1][2] == _pycocotools(zoo, zoo_dets, [7])
    # what an eval over all the zoo's categories would say: dog's AP 0 halves it
    assert _pycocotools(zoo, zoo_dets, [7, 3]) == pytest.approx(0.5, abs=1e-15)
    assert matrix_markdown(result).splitlines() == [
        '| train \\ eval | coco | crowd | zoo |', '|---|---|---|---|',
        '| person | 1.000 | 0.663 | - |', '| animal | - | - | 1.000 |',
        '| both | 1.000 | 0.000 | 0.000 |']


def test_oracle_matrix_on_real_data(shared_real):
    files = dict(coco='coco/test_coco.json', crowdpose='crowdpose/test_crowdpose.json',
                 ap10k='ap10k/test_ap10k.json', animalpose='animalpose/test_animalpose.json')
    gts = {n: json.load(open(osp.join(shared_real, f))) for n, f in files.items()}
    ap10k_classes = [c['name'] for c in gts['ap10k']['categories']]
    heads = dict(person=['person'], animal=ap10k_classes)
    label = dict(person=dict(person=0), animal={c: i for i, c in enumerate(ap10k_classes)})
    preds = dict(person=dict(coco=_oracle(gts['coco'], label['person']),
                             crowdpose=_oracle(gts['crowdpose'], label['person'], {106848})),
                 animal=dict(ap10k=_oracle(gts['ap10k'], label['animal']),
                             animalpose=_oracle(gts['animalpose'], label['animal'])))
    result = matrix_from_predictions(preds, heads, gts)
    # CrowdPose image 106848 holds 3 of its 5 persons (its file has no "area": filled)
    one = pytest.approx(1.0, abs=1e-15)
    assert result['matrix'] == [[one, pytest.approx(_ap_at_recall(3 / 5), abs=1e-15), None,
                                 None], [None, None, one, one]]
    assert result['cells']['animal']['animalpose']['shared_classes'] == ['cat']
    assert result['matrix'][0][1] == _pycocotools(
        gts['crowdpose'], [dict(d, category_id=1) for d in preds['person']['crowdpose']], [1])
    assert 'area' not in gts['crowdpose']['annotations'][0]  # the input is not modified


def test_matrix_errors():
    gt = _gt([1], [(1, 1, [0, 0, 10, 10])], [(1, 'person')])
    with pytest.raises(CrossDatasetError, match=r"class map names \['cocoo'\]"):
        matrix_from_predictions({}, dict(person=['person']), dict(coco=gt),
                                class_map=dict(cocoo=dict(human='person')))
    with pytest.raises(CrossDatasetError, match='head "person" has 1 classes but a detection '
                                                'has label 3'):
        matrix_from_predictions(dict(person=dict(coco=[dict(image_id=1, bbox=[0, 0, 1, 1],
                                                            score=1.0, label=3)])),
                                dict(person=['person']), dict(coco=gt))
    two = _gt([1], [], [(1, 'person'), (2, 'human')])
    with pytest.raises(CrossDatasetError, match=r"several categories named \['person'\]"):
        matrix_from_predictions({}, dict(person=['person']), dict(coco=two),
                                class_map=dict(coco=dict(human='person')))
    with pytest.raises(CrossDatasetError, match=r"predictions of heads \['cat'\]"):
        matrix_from_predictions(dict(cat={}), dict(person=['person']), dict(coco=gt))


# ---------------------------------------------------------------------- the model side
def test_per_head_predictions_are_the_merged_predictions_split_by_head():
    model = tiny_models.build_detector()
    model.dataset_meta = tiny_models.META
    model.eval()
    batch = tiny_models.batch(['person', 'animal', 'animal'], seed=3)
    dataset = [dict(inputs=i, data_samples=s) for i, s in zip(batch['inputs'],
                                                                 batch['data_samples'])]
    per_head = predict_per_head(model, dataset, batch_size=2)
    with torch.no_grad():
        merged = model.test_step(copy.deepcopy(batch))
    space = model.label_space
    for i, sample in enumerate(merged):
        img_id = sample.metainfo['img_id']
        expected = sample.pred_instances
        got = [(d, h) for h in ('person', 'animal') for d in per_head[h]
               if d['image_id'] == img_id]
        assert len(got) == len(expected) > 0
        for (det, head), box, score, label in zip(got, expected.bboxes, expected.scores,
                                                  expected.labels):
            assert space.to_unified(head, torch.tensor([det['label']])).item() == label
            assert det['score'] == pytest.approx(float(score), abs=1e-6)
            x1, y1, x2, y2 = box.tolist()
            assert det['bbox'] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-4)


# ---------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_end_to_end_on_synthetic_data(synthetic_root, tmp_path):
    config = tiny_models.write_tiny_config(synthetic_root, str(tmp_path / 'tiny.py'))
    ann = osp.join(synthetic_root, 'annotations')
    img = osp.join(synthetic_root, 'images')
    alias = tmp_path / 'alias.json'
    # keyed by name: "animal" renames the animal head's and the animal set's cat
    alias.write_text(json.dumps(dict(animal=dict(cat='feline'), test=dict(cat='feline'))))
    out = tmp_path / 'out'
    proc = run_tool([PYTHON, TOOL, config, '--out-dir', str(out), '--class-map', str(alias),
                     '--eval', f'person={ann}/person_val.json:{img}/person',
                     f'animal={ann}/animal_val.json:{img}/animal',
                     f'test={ann}/test_full.json:{img}/test'])
    result = json.loads((out / 'matrix.json').read_text())
    assert result['heads'] == ['animal', 'person']  # Config.dump sorted the heads dict
    assert [[v is None for v in row] for row in result['matrix']] == [[True, False, False],
                                                                      [False, True, False]]
    lines = proc.stdout.splitlines()
    assert lines[0] == '| train \\ eval | person | animal | test |'
    assert lines[2] == '| animal | - | ' + ' | '.join(
        f'{v:.3f}' for v in result['matrix'][0][1:]) + ' |'
    assert result['cells']['person']['test']['shared_classes'] == ['person']
    assert result['cells']['animal']['test']['shared_classes'] == ['feline', 'bird']
    assert result['cells']['animal']['animal']['shared_classes'] == ['feline', 'bird']
    assert all(0.0 <= v <= 1.0 for row in result['matrix'] for v in row if v is not None)
    assert (out / 'matrix.png').stat().st_size > 0


@pytest.mark.slow
def test_cli_help_and_errors(synthetic_root, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('cross_dataset_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as exc:
        tool.main(['--help'])
    assert exc.value.code == 0 and '--class-map' in capsys.readouterr().out
    config = tiny_models.write_tiny_config(synthetic_root, str(tmp_path / 'tiny.py'))
    ann = osp.join(synthetic_root, 'annotations', 'person_val.json')
    single = Config.fromfile(config)
    single.model = dict(type='RetinaNet')
    single.dump(str(tmp_path / 'single.py'))
    bad_map = tmp_path / 'bad.json'
    bad_map.write_text('["person"]')
    good = f'person={ann}'
    nobody = tmp_path / 'nobody.json'
    nobody.write_text(json.dumps(dict(nobody=dict(a='b'))))
    not_coco = tmp_path / 'not_coco.json'
    not_coco.write_text('{"images": []}')
    cases = [([str(tmp_path / 'no.py'), '--eval', good], 'config file not found'),
             ([config, str(tmp_path / 'no.pth'), '--eval', good], 'checkpoint not found'),
             ([config, '--eval', 'nosuch'], "--eval nosuch is no NAME=ANN.json and no group of "
              "test_dataloader.dataset (its groups: ['person', 'animal'])"),
             ([config, '--eval', '=x.json'], "NAME=ANN.json[:IMG_DIR], but got '=x.json'"),
             ([config, '--eval', f'x={tmp_path}/no.json'], 'annotation file not found'),
             ([config, '--eval', f'x={ann}:{tmp_path}/none'], 'image folder not found'),
             ([config, '--eval', good, good], "names 'person' twice"),
             ([config, '--eval', good, '--class-map', str(bad_map)], 'must hold'),
             ([config, '--eval', good, '--class-map', 'no.yaml'], 'class-map file not found'),
             ([config, '--eval', f'x={not_coco}'], "is not a COCO file (no ['annotations', "),
             ([config, '--eval', good, '--class-map', str(nobody)],
              "--class-map names ['nobody'], which are neither heads"),
             ([str(tmp_path / 'single.py'), '--eval', good], 'needs a MultiHeadDetector')]
    for argv, message in cases:
        assert tool.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith('cross_dataset_eval.py: error: ') and message in err[-1], err
