"""Every tool that loads data sees what training and tools/test.py see.

One config for all tools: it inherits a "stock" base whose top-level ``test_pipeline``
resizes to 800 x 800, and sets its own 96-px pipeline only on the val / test dataloaders
(``MultiSourceDataset(pipeline=...)``, shared by sources without their own); the train
sources keep an 800-px training pipeline with a random flip. Every annotation file lists
EVERY category (person, cat, bird) but holds only its source's own annotations, and each
source's ``metainfo.classes`` names what it annotates. The model's predictions are
patched to an oracle (every object of the image, hidden ones included, score 0.95), so
the expected pseudo-labels are exact, and the patch records the ``img_shape`` the model
was given. Then, per tool: it ran on 96 x 96 inputs (never 800), and it used each
source's metainfo classes (never the files' ``categories``).
"""
import collections
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

import tiny_models
from conftest import load_tool

CLASSES = ('person', 'cat', 'bird')  # the generator's unified order (category id - 1)
OWN = dict(person=('person', ), animal=('cat', 'bird'))
SIZE = 96  # the dataloaders' pipeline; the stale top-level test_pipeline says 800


def _tool(rel):
    return load_tool(rel)


def _json(path):
    with open(path) as f:
        return json.load(f)


def _all_categories(root, key, out_dir):
    """``<key>.json`` over every category: the full file minus the hidden annotations."""
    full = _json(osp.join(root, 'annotations', f'{key}_full.json'))
    own = [dict({k: v for k, v in a.items() if k != 'hidden'}) for a in full['annotations']
           if not a['hidden']]
    path = osp.join(out_dir, f'{key}.json')
    with open(path, 'w') as f:
        json.dump(dict(full, annotations=own), f)
    return path, full


def _pipelines():
    load = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]
    small = [load[0], dict(type='Resize', scale=(SIZE, SIZE), keep_ratio=True), load[1],
             dict(type='PackDetInputs')]
    stock = [load[0], dict(type='Resize', scale=(800, 800), keep_ratio=False), load[1],
             dict(type='PackDetInputs')]
    train = [*load, dict(type='Resize', scale=(800, 800), keep_ratio=False),
             dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]
    return small, stock, train


def _loader(root, files, split, pipeline=None, own_pipeline=None):
    sources = [dict(type='CocoDataset', group_name=g, data_root=root + '/',
                    ann_file=files[f'{g}_{split}'], data_prefix=dict(img=f'images/{g}/'),
                    metainfo=dict(classes=OWN[g]), filter_cfg=None,
                    test_mode=split != 'train')
               for g in OWN]
    if own_pipeline is not None:
        for src in sources:
            src['pipeline'] = own_pipeline
    dataset = dict(_delete_=True, type='MultiSourceDataset', datasets=sources)
    if pipeline is not None:
        dataset['pipeline'] = pipeline
    return dict(batch_size=4, num_workers=0, persistent_workers=False,
                sampler=dict(type='DefaultSampler', shuffle=split == 'train'), dataset=dataset)


@pytest.fixture(scope='module')
def world(synthetic_root, tmp_path_factory):
    """The config, the all-category files, the oracle (img_path -> objects), a checkpoint."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    tmp = tmp_path_factory.mktemp('tools_see')
    files, oracle = {}, {}
    for g in OWN:
        for split in ('train', 'val'):
            files[f'{g}_{split}'], full = _all_categories(synthetic_root, f'{g}_{split}',
                                                          str(tmp))
            for im in full['images']:
                path = osp.join(synthetic_root, 'images', g, im['file_name'])
                oracle[path] = [(a['bbox'], a['category_id'] - 1) for a in full['annotations']
                                if a['image_id'] == im['id']]
    tiny = tiny_models.write_tiny_config(synthetic_root, str(tmp / 'tiny.py'))
    small, stock, train = _pipelines()
    (tmp / 'stock_base.py').write_text(f"_base_ = [{tiny!r}]\ntest_pipeline = {stock!r}\n")
    body = [f"_base_ = ['./stock_base.py']",
            f'train_dataloader = {_loader(synthetic_root, files, "train", own_pipeline=train)!r}',
            f'val_dataloader = {_loader(synthetic_root, files, "val", pipeline=small)!r}',
            f'test_dataloader = {_loader(synthetic_root, files, "val", pipeline=small)!r}']
    config = tmp / 'cfg.py'
    config.write_text('\n'.join(body) + '\n')
    cfg = Config.fromfile(str(config))
    assert cfg.test_pipeline[1]['scale'] == (800, 800)  # the stale variable is there
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    ckpt = tmp / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return dict(root=synthetic_root, tmp=tmp, config=str(config), ckpt=str(ckpt),
                files=files, oracle=oracle)


@pytest.fixture
def oracle_model(world, monkeypatch):
    """Patch the detector's predictions to the oracle; returns the recorded input shapes."""
    from mtl_plugin.models.detectors.multi_head import MultiHeadDetector
    seen = []

    def objects(sample, names):
        seen.append((tuple(sample.metainfo['img_shape']), tuple(sample.batch_input_shape)))
        objs = [(b, CLASSES[c]) for b, c in world['oracle'][sample.metainfo['img_path']]
                if CLASSES[c] in names]
        boxes = torch.tensor([[x, y, x + w, y + h] for (x, y, w, h), _ in objs],
                             dtype=torch.float32).reshape(-1, 4)
        return InstanceData(bboxes=boxes, scores=torch.full((len(objs), ), 0.95),
                            labels=torch.tensor([names.index(n) for _, n in objs],
                                                dtype=torch.long))

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        for sample in batch_data_samples:
            sample.pred_instances = objects(sample, CLASSES)
        return batch_data_samples

    def predict_per_head(self, batch_inputs, batch_data_samples, rescale=True):
        heads = self.head_classes()
        return {h: [objects(s, list(names)) for s in batch_data_samples]
                for h, names in heads.items()}

    monkeypatch.setattr(MultiHeadDetector, 'predict', predict)
    monkeypatch.setattr(MultiHeadDetector, 'predict_per_head', predict_per_head)
    return seen


def _assert_small(seen, n):
    assert len(seen) == n and set(seen) == {((SIZE, SIZE), (SIZE, SIZE))}, set(seen)


@pytest.mark.slow
def test_consolidate_adds_exactly_the_other_sources_objects(world, oracle_model):
    out, root = world['tmp'] / 'consolidated', world['root']
    tune = f'{root}/annotations/person_val_full.json:{root}/images/person'
    assert _tool('tools/consolidate.py').main(
        [world['config'], world['ckpt'], '--out-dir', str(out), '--batch-size', '8',
         '--tune-on', tune]) == 0
    # the train split (16 + 16) and the tuning split (8), with the test dataloader's pipeline
    _assert_small(oracle_model, 32 + 8)
    summary = _json(out / 'summary.json')
    assert summary['tuned'] == dict(person=0.05, cat=0.05, bird=0.05)  # the oracle is exact
    for g in OWN:
        full = _json(osp.join(world['root'], 'annotations', f'{g}_train_full.json'))
        hidden = sorted((a['image_id'], CLASSES[a['category_id'] - 1], tuple(a['bbox']))
                        for a in full['annotations'] if a['hidden'])
        new = _json(out / f'{g}_consolidated.json')
        names = {c['id']: c['name'] for c in new['categories']}
        pseudo = sorted((a['image_id'], names[a['category_id']], tuple(a['bbox']))
                        for a in new['annotations'] if a.get('pseudo'))
        assert len(hidden) > 0 and pseudo == hidden  # every other-source object, nothing else
        assert {n for _, n, _ in pseudo} == set(CLASSES) - set(OWN[g])
        own = _json(world['files'][f'{g}_train'])['annotations']
        assert summary['sources'][g]['own_gt'] == len(own)
        # the correct detections of the other source's classes are no missing labels
        kinds = {k: v for k, v in summary['sources'][g].items() if k in (
            'possibly_missing_label', 'missing_detection', 'label_mismatch', 'ignore')}
        assert kinds == {} and summary['sources'][g]['pseudo'] == len(hidden)


@pytest.mark.slow
def test_tuning_per_source_tunes_only_the_classes_it_does_not_annotate(world, oracle_model):
    out, root = world['tmp'] / 'consolidated_per_source', world['root']
    person = f'person={root}/annotations/person_val_full.json:{root}/images/person'
    tool = _tool('tools/consolidate.py')
    assert tool.main([world['config'], world['ckpt'], '--out-dir', str(out), '--tune-on',
                      person]) == 0
    # person images tune cat and bird (their pseudo boxes go there), never person
    assert _json(out / 'summary.json')['tuned'] == dict(person=None, cat=0.05, bird=0.05)
    animal = f'animal={root}/annotations/animal_val_full.json:{root}/images/animal'
    assert tool.main([world['config'], world['ckpt'], '--out-dir', str(out), '--tune-on',
                      person, animal]) == 0
    assert _json(out / 'summary.json')['tuned'] == dict(person=0.05, cat=0.05, bird=0.05)
    assert tool.main([world['config'], world['ckpt'], '--out-dir', str(out), '--tune-on',
                      person.replace('person=', 'persn=')]) == 2


@pytest.mark.slow
def test_browse_predictions_uses_the_dataloader_and_metainfo(world, oracle_model):
    out = world['tmp'] / 'browse'
    assert _tool('tools/analysis/browse_predictions.py').main(
        [world['config'], world['ckpt'], '--split', 'test', '--num-images', '3',
         '--out-dir', str(out)]) == 0
    _assert_small(oracle_model, 2 * 3 * 2)  # 3 images per group, each seen by 2 heads
    report = _json(out / 'predictions.json')
    assert report['heads'] == dict(person=['person'], animal=['cat', 'bird'])
    for g, rows in report['groups'].items():
        full = _json(osp.join(world['root'], 'annotations', f'{g}_val_full.json'))
        for row in rows:
            own = [CLASSES[a['category_id'] - 1] for a in full['annotations']
                   if a['image_id'] == row['img_id'] and not a['hidden']]
            assert sorted(row['gt']['label_names']) == sorted(own)
            assert set(row['gt']['label_names']) <= set(OWN[g])
            assert set(row['predictions']['animal']['label_names']) <= {'cat', 'bird'}


@pytest.mark.slow
def test_feature_space_reads_train_with_the_test_pipeline(world, monkeypatch):
    from mtl_plugin.models.detectors.multi_head import MultiHeadDetector
    shapes, extract = [], MultiHeadDetector.extract_feat

    def recording(self, inputs):
        shapes.append(tuple(inputs.shape[-2:]))
        return extract(self, inputs)

    monkeypatch.setattr(MultiHeadDetector, 'extract_feat', recording)
    out = world['tmp'] / 'features'
    assert _tool('tools/analysis/feature_space.py').main(
        [world['config'], world['ckpt'], '--split', 'train', '--max-images', '32',
         '--batch-size', '16', '--out-dir', str(out)]) == 0
    assert shapes == [(SIZE, SIZE)] * 2
    feats = np.load(out / 'features.npz')
    got = collections.Counter(zip(feats['inst_groups'].tolist(), feats['inst_classes'].tolist()))
    want = collections.Counter(
        (g, CLASSES[a['category_id'] - 1]) for g in OWN
        for a in _json(world['files'][f'{g}_train'])['annotations'])
    assert got == want and {c for _, c in got} == set(CLASSES)


@pytest.mark.slow
def test_cross_dataset_eval_on_the_test_sources(world, oracle_model):
    out = world['tmp'] / 'cross'
    assert _tool('tools/analysis/cross_dataset_eval.py').main(
        [world['config'], world['ckpt'], '--eval', 'person', 'animal',
         '--out-dir', str(out)]) == 0
    _assert_small(oracle_model, 2 * 16)  # 8 + 8 val images, 2 heads
    result = _json(out / 'matrix.json')
    assert sorted(result['heads']) == ['animal', 'person']
    assert result['evals'] == ['person', 'animal']
    # the oracle is exact on each source's own classes; a head shares no class with the
    # other source (its metainfo classes), although both files list every category
    cells = {(h, e): result['cells'][h][e]['bbox_mAP'] for h in OWN for e in OWN}
    assert cells == {('person', 'person'): 1.0, ('animal', 'animal'): 1.0,
                     ('person', 'animal'): None, ('animal', 'person'): None}
    assert result['cells']['animal']['animal']['shared_classes'] == ['cat', 'bird']
    assert result['eval_files']['person']['ann_file'] == world['files']['person_val']


@pytest.mark.slow
def test_dataset_report_and_data_map_take_the_metainfo_classes(world):
    from mmengine.config import Config

    from mtl_plugin.analysis.data_map import coco_ann_ids, sources_from_config
    out = world['tmp'] / 'report'
    assert _tool('tools/analysis/dataset_report.py').main(
        [world['config'], '--split', 'train', '--out-dir', str(out), '--no-plots']) == 0
    report = _json(out / 'report.json')
    for g, own in OWN.items():
        anns = _json(world['files'][f'{g}_train'])['annotations']
        stats = report['sources'][g]
        assert tuple(stats['classes']) == own
        assert stats['instances_per_class'] == {c: sum(CLASSES[a['category_id'] - 1] == c
                                                       for a in anns) for c in own}
    sources = sources_from_config(Config.fromfile(world['config']))
    for g, own in OWN.items():
        src = sources[g]()
        assert src.ann_file == world['files'][f'{g}_train']
        assert tuple(src.metainfo['classes']) == own
        ids = coco_ann_ids(src)
        anns = _json(world['files'][f'{g}_train'])['annotations']
        assert sorted(i for v in ids.values() for i in v) == sorted(a['id'] for a in anns)


def _oracle_preds(full):
    """Image id -> every object of the fully labelled file at 0.95 (unified labels)."""
    from mtl_plugin.analysis.consolidation import xywh_to_xyxy
    preds = {}
    for im in full['images']:
        anns = [a for a in full['annotations'] if a['image_id'] == im['id']]
        preds[im['id']] = dict(bboxes=xywh_to_xyxy([a['bbox'] for a in anns]),
                               scores=np.full(len(anns), 0.95, np.float32),
                               labels=np.array([a['category_id'] - 1 for a in anns]))
    return preds


@pytest.mark.parametrize('group', list(OWN))
def test_consolidate_source_own_classes_not_file_categories(synthetic_root, tmp_path, group):
    from mtl_plugin.analysis.consolidation import Thresholds, consolidate_source
    path, full = _all_categories(synthetic_root, f'{group}_train', str(tmp_path))
    coco, preds = _json(path), _oracle_preds(full)
    hidden = sorted((a['image_id'], a['category_id'], tuple(a['bbox']))
                    for a in full['annotations'] if a['hidden'])
    new, rows = consolidate_source(coco, CLASSES, preds, Thresholds(), group,
                                   own={c: c for c in OWN[group]})
    assert sorted((a['image_id'], a['category_id'], tuple(a['bbox']))
                  for a in new['annotations'] if a.get('pseudo')) == hidden
    assert [r['kind'] for r in rows] == ['pseudo'] * len(hidden)
    # the file's categories as the source's classes: nothing added, every correct
    # detection of the other source's classes flagged as a missing label (the old bug)
    new, rows = consolidate_source(coco, CLASSES, preds, Thresholds(), group)
    assert not [a for a in new['annotations'] if a.get('pseudo')]
    assert [r['kind'] for r in rows] == ['possibly_missing_label'] * len(hidden)


def test_label_noise_swaps_within_the_source_classes(synthetic_root, tmp_path):
    from mtl_plugin.analysis.label_noise import inject_label_noise
    path, _ = _all_categories(synthetic_root, 'animal_train', str(tmp_path))
    coco = _json(path)  # categories person (1), cat (2), bird (3); only cats and birds
    _, records = inject_label_noise(coco, 1.0, ['swap_class'], classes=OWN['animal'])
    assert len(records) == len(coco['annotations'])
    assert all({r['category_id'], r['new_category_id']} == {2, 3} for r in records)
    _, records = inject_label_noise(coco, 1.0, ['swap_class'])
    assert any(r['new_category_id'] == 1 for r in records)  # the file's categories
    with pytest.raises(ValueError, match=r"classes \['dog'\] are not categories"):
        inject_label_noise(coco, 0.5, classes=('cat', 'dog'))


def test_tool_pipelines_are_the_dataloaders_own():
    from mtl_plugin.analysis.tool_data import (ToolDataError, require_groups,
                                               source_pipelines, tool_dataset_cfg)
    small, stock, train = _pipelines()
    files = {f'{g}_{s}': f'{g}_{s}.json' for g in OWN for s in ('train', 'val')}
    test = _loader('/data', files, 'val', pipeline=small)
    test['dataset']['datasets'][1]['pipeline'] = stock  # a source's own pipeline wins
    cfg = dict(test_pipeline=stock, test_dataloader=test,
               train_dataloader=dict(dataset=dict(type='ClassBalancedDataset', dataset=_loader(
                   '/data', files, 'train', own_pipeline=train)['dataset'])))
    assert source_pipelines(cfg, 'test') == {None: small, 'person': small, 'animal': stock}
    assert source_pipelines(cfg, 'train') == {'person': train, 'animal': train}
    read = tool_dataset_cfg(cfg, 'train')  # the wrapper dropped, each group's test pipeline
    assert read['type'] == 'MultiSourceDataset' and 'pipeline' not in read
    assert [s['pipeline'] for s in read['datasets']] == [small, stock]
    assert [s['ann_file'] for s in read['datasets']] == ['person_train.json', 'animal_train.json']
    assert tool_dataset_cfg(cfg, 'test') == {k: v for k, v in test['dataset'].items()}
    del test['dataset']['pipeline']
    with pytest.raises(ToolDataError, match=r"test_dataloader.dataset.datasets\[0\] \('person'\) "
                       r'has no pipeline and the MultiSourceDataset shares none'):
        source_pipelines(cfg, 'test')
    plain = dict(val_dataloader=dict(dataset=dict(type='CocoDataset', pipeline=small)))
    with pytest.raises(ToolDataError, match="is 'CocoDataset', not a MultiSourceDataset: the "
                       'config has no groups; add them'):
        require_groups(plain, 'val', 'add them')
    with pytest.raises(ToolDataError, match=r"split must be one of \('train', 'val', 'test'\), "
                       "but got 'tset'"):
        tool_dataset_cfg(cfg, 'tset')
