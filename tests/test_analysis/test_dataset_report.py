"""tools/analysis/dataset_report.py and tools/analysis/browse_predictions.py."""
import collections
import glob
import hashlib
import importlib.util
import json
import re
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope

from conftest import PYTHON, REPO, run_tool
from mtl_plugin.analysis.dataset_report import (ASPECT_EDGES, SIZE_EDGES, AnnSource,
                                                DatasetReportError, build_report,
                                                source_stats)

DEMO = osp.join(REPO, 'configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py')
UNION = osp.join(REPO, 'configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py')
REPORT = osp.join(REPO, 'tools/analysis/dataset_report.py')
BROWSE = osp.join(REPO, 'tools/analysis/browse_predictions.py')
# keep every box of a random-init model (its scores are ~0.01), a few per image
LOOSE = ['model.test_cfg.score_thr=0.0', 'model.test_cfg.max_per_img=3']


def _tool(path):
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _roots(root, split):
    return [f'{split}_dataloader.dataset.datasets.{i}.data_root={root}/' for i in (0, 1)]


def _tree_hashes(*paths):
    files = [f for p in paths for f in (sorted(glob.glob(osp.join(p, '**', '*'), recursive=True))
                                        if osp.isdir(p) else [p]) if osp.isfile(f)]
    return {f: hashlib.sha256(open(f, 'rb').read()).hexdigest() for f in files}


def _error_line(stderr):
    """The one 'error: ...' line of a failed tool (third-party import warnings aside)."""
    lines = [line for line in stderr.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1 and 'Traceback' not in stderr, stderr
    return lines[0]


def _direct_counts(path):
    data = json.load(open(path))
    names = {c['id']: c['name'] for c in data['categories']}
    per_image = collections.Counter(a['image_id'] for a in data['annotations'])
    return dict(num_images=len(data['images']), num_annotations=len(data['annotations']),
                per_class=dict(collections.Counter(names[a['category_id']]
                                                   for a in data['annotations'])),
                mean=len(data['annotations']) / len(data['images']),
                empty=sum(per_image[im['id']] == 0 for im in data['images']))


# ---------------------------------------------------------------------- dataset_report
def test_report_on_generated_files_equals_a_direct_count(synthetic_root, tmp_path, capsys):
    ann = {g: osp.join(synthetic_root, 'annotations', f'{g}.json')
           for g in ('person_train', 'animal_train', 'person_train_full')}
    before = _tree_hashes(synthetic_root)
    assert _tool(REPORT).main([*(f'--ann={g}={p}' for g, p in ann.items()),
                               '--out-dir', str(tmp_path)]) == 0
    assert _tree_hashes(synthetic_root) == before
    report = json.load(open(tmp_path / 'report.json'))
    for name, path in ann.items():
        s, want = report['sources'][name], _direct_counts(path)
        assert s['num_images'] == want['num_images'] == 16
        assert s['num_annotations'] == want['num_annotations']
        assert {c: n for c, n in s['instances_per_class'].items() if n} == want['per_class']
        assert s['boxes_per_image']['mean'] == pytest.approx(want['mean'], abs=1e-12)
        assert sum(s['boxes_per_image']['hist']) == 16
        assert s['empty_images'] == want['empty'] and s['crowd'] == 0
        # the generator marks every keypoint visible (v=2)
        assert set(s['keypoints']['names']) == {'top', 'right', 'bottom', 'left'}
        for counts in s['keypoints']['visibility'].values():
            assert counts == {'0': 0, '1': 0, '2': want['num_annotations']}
    ov = report['overlap']
    assert ov['sources'] == ['person_train', 'animal_train', 'person_train_full']
    # person {person}, animal {cat, bird}: disjoint; the full file has all three classes
    assert ov['shared'] == [[1, 0, 1], [0, 2, 2], [1, 2, 3]]
    np.testing.assert_allclose(ov['jaccard'], [[1, 0, 1 / 3], [0, 1, 2 / 3], [1 / 3, 2 / 3, 1]])
    assert ov['shared_classes'] == {'person_train|animal_train': [],
                                    'person_train|person_train_full': ['person'],
                                    'animal_train|person_train_full': ['bird', 'cat']}
    for png in ('class_counts', 'box_size', 'aspect_ratio', 'boxes_per_image',
                'keypoint_visibility', 'overlap'):
        assert (tmp_path / f'{png}.png').stat().st_size > 1000
    assert 'person_train' in capsys.readouterr().out


def _hand_file(path):
    kp = lambda v0, v1: [1, 1, v0, 2, 2, v1]  # noqa: E731
    data = dict(
        images=[dict(id=1, width=100, height=100), dict(id=2, width=100, height=100),
                dict(id=3, width=200, height=50)],
        categories=[dict(id=1, name='a', keypoints=['k0', 'k1']), dict(id=5, name='b')],
        annotations=[
            dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 36, 49], keypoints=kp(2, 1)),
            dict(id=2, image_id=1, category_id=5, bbox=[5, 5, 18, 72], iscrowd=1,
                 keypoints=kp(0, 0)),
            dict(id=3, image_id=3, category_id=1, bbox=[0, 0, 10, 0]),  # degenerate
            dict(id=4, image_id=99, category_id=1, bbox=[0, 0, 5, 5])])  # no such image
    path.write_text(json.dumps(data))
    return str(path)


def test_hand_computed_source_stats(tmp_path):
    s = source_stats(AnnSource('hand', _hand_file(tmp_path / 'hand.json')))
    assert (s['num_images'], s['num_annotations'], s['classes']) == (3, 3, ['a', 'b'])
    assert s['instances_per_class'] == {'a': 2, 'b': 1} and s['imbalance_ratio'] == 2.0
    assert s['boxes_per_image'] == dict(mean=1.0, max=2, hist=[1, 1, 1])
    assert (s['crowd'], s['empty_images'], s['degenerate_boxes']) == (1, 1, 1)
    assert (s['annotations_without_image'], s['ignored_annotations']) == (1, 0)
    # sqrt(36 * 49 / 100^2) = 0.42 (bin 8), sqrt(18 * 72 / 100^2) = 0.36 (bin 7)
    want = np.zeros(len(SIZE_EDGES) - 1, int)
    want[[7, 8]] = 1
    assert s['box_size']['counts'] == want.tolist()
    # 36 / 49 = 2^-0.44 (bin 10); 18 / 72 = 2^-2 (bin 4, its left edge)
    want = np.zeros(len(ASPECT_EDGES) - 1, int)
    want[[4, 10]] = 1
    assert s['aspect_ratio']['counts'] == want.tolist()
    assert s['keypoints'] == dict(names=['k0', 'k1'], visibility={
        'k0': {'0': 1, '1': 0, '2': 1}, 'k1': {'0': 1, '1': 1, '2': 0}})
    # metainfo.classes keeps only "b" (as mmdet's CocoDataset does)
    s = source_stats(AnnSource('hand', str(tmp_path / 'hand.json'), classes=('b', )))
    assert s['instances_per_class'] == {'b': 1} and s['ignored_annotations'] == 3
    assert s['boxes_per_image']['hist'] == [2, 1] and s['empty_images'] == 2
    # an annotation of a category id the file does not list: counted and reported (issue 12)
    data = json.loads((tmp_path / 'hand.json').read_text())
    data['annotations'] += [dict(id=5 + k, image_id=2, category_id=9, bbox=[1, 1, 4, 4])
                            for k in range(2)]
    (tmp_path / 'stale.json').write_text(json.dumps(data))
    s = source_stats(AnnSource('hand', str(tmp_path / 'stale.json')))
    assert s['unlisted_category_annotations'] == {'9': 2} and s['ignored_annotations'] == 2
    assert source_stats(AnnSource('hand', str(tmp_path / 'hand.json')))[
        'unlisted_category_annotations'] == {}
    with pytest.raises(DatasetReportError, match=r"has none of the classes \('c',\)"):
        source_stats(AnnSource('hand', str(tmp_path / 'hand.json'), classes=('c', )))
    (tmp_path / 'empty.json').write_text(json.dumps(dict(
        images=[dict(id=7, width=10, height=10)], annotations=[], categories=[])))
    s = source_stats(AnnSource('empty', str(tmp_path / 'empty.json')))
    assert (s['num_images'], s['num_annotations'], s['empty_images']) == (1, 0, 1)
    assert s['imbalance_ratio'] is None and s['keypoints'] is None
    assert s['boxes_per_image'] == dict(mean=0.0, max=0, hist=[1])


def test_config_form_equals_the_ann_form(synthetic_root, tmp_path):
    before = _tree_hashes(synthetic_root, DEMO)
    tool = _tool(REPORT)
    assert tool.main([DEMO, '--split', 'val', '--out-dir', str(tmp_path / 'cfg'), '--no-plots',
                      '--cfg-options', *_roots(synthetic_root, 'val')]) == 0
    assert _tree_hashes(synthetic_root, DEMO) == before
    from_cfg = json.load(open(tmp_path / 'cfg' / 'report.json'))
    direct = build_report([AnnSource(g, osp.join(synthetic_root, 'annotations', f'{g}_val.json'))
                           for g in ('person', 'animal')])
    assert from_cfg['settings'] == dict(config=DEMO, split='val')
    for name in ('person', 'animal'):
        got, want = from_cfg['sources'][name], direct['sources'][name]
        assert osp.samefile(got.pop('ann_file'), want.pop('ann_file'))
        assert got == json.loads(json.dumps(want))
    assert from_cfg['overlap']['shared'] == [[1, 0], [0, 2]]
    assert not glob.glob(str(tmp_path / 'cfg' / '*.png'))


def test_report_errors_are_one_line(tmp_path, capsys):
    tool = _tool(REPORT)
    no_groups = tmp_path / 'plain.py'
    no_groups.write_text("train_dataloader = dict(dataset=dict(type='CocoDataset', "
                         "ann_file='a.json'))\n")
    cases = [([f'--ann=p={tmp_path}/missing.json'], r'missing\.json.* does not exist'),
             ([str(no_groups)], r"'CocoDataset', not a MultiSourceDataset.*--ann NAME="),
             (['--ann', 'nosep'], r"NAME=path\.json, but got 'nosep'"),
             ([], 'give either a config or --ann')]
    for argv, match in cases:
        assert tool.main([*argv, '--out-dir', str(tmp_path / 'out')]) == 2
        err = _error_line(capsys.readouterr().err)
        assert re.search(match, err), err
    with pytest.raises(DatasetReportError, match=r'is not a COCO file'):
        (tmp_path / 'x.json').write_text('[]')
        source_stats(AnnSource('x', str(tmp_path / 'x.json')))
    with pytest.raises(DatasetReportError, match=r'annotation #0 needs .*4-number bbox'):
        (tmp_path / 'y.json').write_text(json.dumps(dict(
            images=[dict(id=1)], categories=[dict(id=1, name='a')],
            annotations=[dict(image_id=1, category_id=1, bbox=[1, 2, 3])])))
        source_stats(AnnSource('y', str(tmp_path / 'y.json')))
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('tool', [REPORT, BROWSE])
def test_help(tool):
    out = run_tool([PYTHON, tool, '--help']).stdout
    assert '--out-dir' in out and '--cfg-options' in out and '--split' in out


# ---------------------------------------------------------------------- browse_predictions
@pytest.mark.slow
def test_browse_multi_head_random_init(synthetic_root, tmp_path, capsys):
    before = _tree_hashes(synthetic_root, DEMO)
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert _tool(BROWSE).main([DEMO, '--num-images', '2', '--score-thr', '0',
                                   '--out-dir', str(tmp_path), '--cfg-options', *LOOSE,
                                   *_roots(synthetic_root, 'val')]) == 0
    assert _tree_hashes(synthetic_root, DEMO) == before
    assert 'warning: no checkpoint given' in capsys.readouterr().err
    preds = json.load(open(tmp_path / 'predictions.json'))
    assert preds['heads'] == {'person': ['person'], 'animal': ['cat', 'bird']}
    for group in ('person', 'animal'):
        assert (tmp_path / f'{group}.png').stat().st_size > 5000
        rows = preds['groups'][group]
        assert [r['img_id'] for r in rows] == [1, 2]
        coco = json.load(open(osp.join(synthetic_root, 'annotations', f'{group}_val.json')))
        names = {c['id']: c['name'] for c in coco['categories']}
        for row in rows:
            anns = [a for a in coco['annotations'] if a['image_id'] == row['img_id']]
            np.testing.assert_allclose(row['gt']['bboxes'], [
                [x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)], atol=0.01)
            assert row['gt']['label_names'] == [names[a['category_id']] for a in anns]
            assert list(row['predictions']) == ['person', 'animal']  # one entry per head
            for head, p in row['predictions'].items():
                assert 1 <= len(p['bboxes']) <= 3
                assert len(p['scores']) == len(p['labels']) == len(p['bboxes'])
                assert set(p['label_names']) <= set(preds['heads'][head])


@pytest.mark.slow
def test_browse_stock_detector_and_errors(synthetic_root, tmp_path, capsys):
    tool = _tool(BROWSE)
    opts = ['--cfg-options', *LOOSE, *_roots(synthetic_root, 'val')]
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert tool.main([UNION, '--img-ids', '3', '--score-thr', '0', '--out-dir',
                          str(tmp_path), *opts]) == 0
        preds = json.load(open(tmp_path / 'predictions.json'))
        assert preds['heads'] == {'RetinaNet': ['person', 'cat', 'bird']}
        for group in ('person', 'animal'):
            assert [r['img_id'] for r in preds['groups'][group]] == [3]
            assert list(preds['groups'][group][0]['predictions']) == ['RetinaNet']
        capsys.readouterr()
        cases = [([DEMO, str(tmp_path / 'nope.pth')], r"checkpoint '.*nope\.pth' does not exist"),
                 ([DEMO, '--img-ids', '999'], r'--img-ids \[999\] are in no group'),
                 ([str(tmp_path / 'nope.py')], r'config .* does not exist')]
        for argv, match in cases:
            assert tool.main([*argv, '--out-dir', str(tmp_path / 'err'), *opts]) == 2
            err = _error_line(capsys.readouterr().err)
            assert re.search(match, err), err


@pytest.mark.slow
def test_browse_loads_a_checkpoint_and_heads_match_the_merged_predict(synthetic_root,
                                                                       tmp_path):
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mtl_plugin.analysis.browse import (browse, build_browse_dataset, build_model,
                                            head_predictions, select_images)
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(dict(x.split('=', 1) for x in _roots(synthetic_root, 'val')))
    cfg.merge_from_dict({'model.test_cfg.score_thr': 0.0, 'model.test_cfg.max_per_img': 3})
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = build_browse_dataset(cfg, 'val')
        model = build_model(cfg, None, dataset.metainfo)
        ckpt = str(tmp_path / 'model.pth')
        torch.save(dict(state_dict=model.state_dict()), ckpt)
        before = _tree_hashes(ckpt)
        selection = select_images(dataset, num_images=1)
        browse(model, dataset, selection, str(tmp_path / 'lib'), score_thr=0.0)
        assert _tool(BROWSE).main([DEMO, ckpt, '--num-images', '1', '--score-thr', '0',
                                   '--out-dir', str(tmp_path / 'cli'), '--cfg-options',
                                   *LOOSE, *_roots(synthetic_root, 'val')]) == 0
        assert _tree_hashes(ckpt) == before
        lib = json.load(open(tmp_path / 'lib' / 'predictions.json'))
        cli = json.load(open(tmp_path / 'cli' / 'predictions.json'))
        assert lib == cli  # the CLI loaded exactly these weights
        # per-head predictions are what MultiHeadDetector.predict merges (no merge_nms)
        data = pseudo_collate([dataset[i] for i in selection['animal']])
        per_head = head_predictions(model, data)[0]
        with torch.no_grad():
            merged = model.test_step(data)[0].pred_instances
        torch.testing.assert_close(merged.bboxes, torch.cat(
            [per_head['person'].bboxes, per_head['animal'].bboxes]))
        torch.testing.assert_close(merged.labels, torch.cat(
            [per_head['person'].labels, per_head['animal'].labels + 1]))  # cat, bird -> 1, 2
