"""A multi-head detector at mmdet's stock doors, with no code of the user's: DetInferencer,
init_detector + inference_detector, a plain CocoDataset test set, a dataset covering only
some heads, and mmdet's own tools/test.py --show-dir on the real samples."""
import copy
import json
import os
import os.path as osp
import pickle
import shutil
import subprocess

import mmdet
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

import tiny_models
from conftest import PYTHON, REPO

STOCK_MMDET_TEST = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
REAL_DET = osp.join(REPO, 'configs/multihead/multihead-retinanet_r18_fpn_1xb2-1e_coco-ap10k.py')
UNIFIED = ('person', 'cat', 'bird')


def _runner_cfg(root, work):
    """The tiny synthetic multi-head config, runnable: 1 iteration, one checkpoint."""
    cfg = Config.fromfile(tiny_models.write_tiny_config(root, osp.join(work, 'tiny.py')))
    cfg.merge_from_dict(dict(
        work_dir=work, log_level='WARNING', custom_hooks=[], randomness=dict(seed=0),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False)),
        visualizer=dict(type='DetLocalVisualizer', name='tiny_vis'),
        test_cfg=dict(type='TestLoop')))
    cfg.train_dataloader.batch_size = 4
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    for group, metric in cfg.test_evaluator.metrics.items():
        metric.ann_file = osp.join(root, f'annotations/{group}_val.json')
    return cfg


@pytest.fixture(scope='module')
def trained(synthetic_root, tmp_path_factory):
    """One tiny multi-head checkpoint written by a Runner (1 iteration), shared."""
    from mmengine.runner import Runner
    work = str(tmp_path_factory.mktemp('tiny_det'))
    cfg = _runner_cfg(synthetic_root, work)
    Runner.from_cfg(copy.deepcopy(cfg)).train()
    config = osp.join(work, 'tiny_run.py')
    cfg.dump(config)
    return dict(config=config, ckpt=osp.join(work, 'iter_1.pth'), root=synthetic_root,
                work=work)


def _image(root, group, pos=0):
    folder = osp.join(root, 'images', group)
    return osp.join(folder, sorted(os.listdir(folder))[pos])


@pytest.mark.slow
@torch.no_grad()
def test_inferencers_give_merged_predictions_in_the_unified_classes(trained):
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    from mmengine.registry import MODELS
    from mmengine.runner import load_checkpoint
    imgs = [_image(trained['root'], 'person'), _image(trained['root'], 'animal')]
    inferencer = DetInferencer(model=trained['config'], weights=trained['ckpt'], device='cpu')
    assert inferencer.model.dataset_meta['classes'] == UNIFIED
    via_inferencer = inferencer(imgs, return_datasamples=True)['predictions']
    model = init_detector(trained['config'], trained['ckpt'], device='cpu')
    assert model.dataset_meta['classes'] == UNIFIED
    for img, got in zip(imgs, via_inferencer):
        sample = inference_detector(model, img)
        pred, want = got.pred_instances, sample.pred_instances
        assert torch.equal(pred.bboxes, want.bboxes) and torch.equal(pred.labels, want.labels)
        # merged = every head's boxes, in head order: person 0 -> 0, animal 0, 1 -> 1, 2
        data = model.data_preprocessor(dict(inputs=[_inputs(model, img)],
                                            data_samples=[sample]), False)
        heads = model.predict_per_head(data['inputs'], data['data_samples'])
        assert all(len(res[0]) for res in heads.values())  # both heads predict
        shift = dict(person=0, animal=1)
        assert torch.equal(pred.labels, torch.cat([r[0].labels + shift[h]
                                                   for h, r in heads.items()]))
        assert torch.equal(pred.scores, torch.cat([r[0].scores for r in heads.values()]))
    # a model built from the config alone knows its classes once its checkpoint is loaded
    cfg = Config.fromfile(trained['config'])
    fresh = MODELS.build(cfg.model)
    assert fresh.groups is None
    load_checkpoint(fresh, trained['ckpt'], map_location='cpu')
    assert fresh.label_space.unified_classes == fresh.output_class_names() == UNIFIED
    assert fresh.groups.to_dict() == dict(person=0, animal=1)
    # no data on disk at inference: the test set is built lazily, for its metainfo only
    absent = {f'test_dataloader.dataset.datasets.{i}.data_root': '/absent/' for i in (0, 1)}
    offline = init_detector(trained['config'], trained['ckpt'], device='cpu',
                            cfg_options=absent)
    assert offline.dataset_meta['classes'] == UNIFIED
    assert torch.equal(inference_detector(offline, imgs[1]).pred_instances.bboxes,
                       via_inferencer[1].pred_instances.bboxes)
    # only chosen heads, from the command line / cfg_options
    animal_only = init_detector(trained['config'], trained['ckpt'], device='cpu',
                                cfg_options={'model.test_cfg.heads': ['animal']})
    labels = inference_detector(animal_only, imgs[1]).pred_instances.labels
    assert len(labels) and set(labels.tolist()) <= {1, 2}


def _inputs(model, img):
    """The test pipeline's image tensor for ``img`` (what inference_detector feeds)."""
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg
    return Compose(get_test_pipeline_cfg(model.cfg.copy()))(dict(img_path=img, img_id=0))[
        'inputs']


def _merged_file(root, path, order):
    """One fully labelled-style COCO file over both val sets, categories in ``order``."""
    ids = {name: i + 1 for i, name in enumerate(order)}
    out = dict(images=[], annotations=[], categories=[dict(id=ids[n], name=n) for n in order])
    for offset, group in ((0, 'person'), (10000, 'animal')):
        ann = json.load(open(osp.join(root, f'annotations/{group}_val.json')))
        names = {c['id']: c['name'] for c in ann['categories']}
        for img in ann['images']:
            out['images'].append(dict(img, id=img['id'] + offset,
                                      file_name=f"{group}/{img['file_name']}"))
        for a in ann['annotations']:
            out['annotations'].append(dict(a, id=a['id'] + offset, image_id=a['image_id'] +
                                           offset, category_id=ids[names[a['category_id']]]))
    with open(path, 'w') as f:
        json.dump(out, f)
    return path


def _plain_test(trained, order, tmp_path, **model_test_cfg):
    """runner.test() of the checkpoint on a plain CocoDataset with classes ``order``."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(trained['config'])
    ann = _merged_file(trained['root'], str(tmp_path / f'{"-".join(order)}.json'), order)
    dump = str(tmp_path / f'{"-".join(order)}.pkl')
    cfg.test_dataloader.dataset = dict(
        type='CocoDataset', data_root=trained['root'] + '/', ann_file=ann,
        data_prefix=dict(img='images/'), metainfo=dict(classes=order), test_mode=True,
        pipeline=cfg.test_dataloader.dataset.pipeline)
    cfg.test_evaluator = [dict(type='CocoMetric', ann_file=ann, metric='bbox'),
                          dict(type='DumpDetResults', out_file_path=dump)]
    cfg.model.test_cfg.update(model_test_cfg)
    cfg.merge_from_dict(dict(load_from=trained['ckpt'], work_dir=str(tmp_path / 'w'),
                             train_dataloader=None, train_cfg=None, optim_wrapper=None))
    metrics = Runner.from_cfg(cfg).test()
    with open(dump, 'rb') as f:
        return metrics, {r['img_id']: r['pred_instances'] for r in pickle.load(f)}


@pytest.mark.slow
def test_plain_coco_test_set_in_the_unified_classes_and_in_another_order(trained, tmp_path):
    """A fresh model + checkpoint evaluated by CocoMetric on a plain CocoDataset (it met no
    MultiSourceDataset): same order works as is; another order maps by name with
    model.test_cfg.output_classes (the same boxes, each under its class name)."""
    metrics, same = _plain_test(trained, UNIFIED, tmp_path)
    assert 'coco/bbox_mAP' in metrics
    order = ('cat', 'person', 'bird')
    metrics, other = _plain_test(trained, order, tmp_path, output_classes=list(order))
    assert 'coco/bbox_mAP' in metrics and same.keys() == other.keys()
    for img_id, a in same.items():
        b = other[img_id]
        assert torch.equal(torch.as_tensor(a['bboxes']), torch.as_tensor(b['bboxes']))
        assert [UNIFIED[i] for i in a['labels']] == [order[i] for i in b['labels']]


class _HeadSnapshot(Hook):
    """Keeps each head's parameters at the start and at the end of training."""

    def __init__(self):
        self.start, self.end = {}, {}

    def _take(self, runner, into):
        for name, head in runner.model.heads.items():
            into[name] = {k: v.detach().clone() for k, v in head.state_dict().items()}

    def before_train(self, runner):
        self._take(runner, self.start)

    def after_train(self, runner):
        self._take(runner, self.end)


@pytest.mark.slow
def test_partial_dataset_keeps_the_other_head_from_its_checkpoint(trained, tmp_path):
    """Stage 2 on person data only, from the 2-group checkpoint and no head_classes: the
    animal head keeps its classes (extra state) and its parameters, bit for bit."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(trained['config'])
    cfg.train_dataloader.dataset.datasets = cfg.train_dataloader.dataset.datasets[:1]
    cfg.train_cfg.max_iters = 2
    snap = _HeadSnapshot()
    cfg.merge_from_dict(dict(load_from=trained['ckpt'], work_dir=str(tmp_path)))
    runner = Runner.from_cfg(cfg)
    runner.register_hook(snap)
    runner.train()
    same = lambda head: all(torch.equal(snap.start[head][k], v)  # noqa: E731
                            for k, v in snap.end[head].items())
    assert same('animal') and not same('person')
    assert runner.model.label_space.group_classes['animal'] == ('cat', 'bird')
    assert runner.model.label_space.unified_classes == UNIFIED


_SPY = '''
import json, os
from mmdet.visualization import DetLocalVisualizer

_add, _inst = DetLocalVisualizer.add_datasample, DetLocalVisualizer._draw_instances
_texts, _boxes = DetLocalVisualizer.draw_texts, DetLocalVisualizer.draw_bboxes
state = dict(name=None, part=-1)


def _log(**kw):
    with open(os.environ['DRAW_LOG'], 'a') as f:
        f.write(json.dumps(dict(kw, name=state['name'], part=state['part'])) + '\\n')


def add_datasample(self, name, *a, **kw):
    # DetVisualizationHook names every drawing 'test_img'; its out_file is the image's name
    state.update(name=os.path.basename(kw.get('out_file') or name), part=-1)
    return _add(self, name, *a, **kw)


def _draw_instances(self, *a, **kw):
    state['part'] += 1  # 0: ground truth, 1: predictions
    return _inst(self, *a, **kw)


def draw_texts(self, texts, *a, colors=None, **kw):
    _log(text=texts)
    return _texts(self, texts, *a, colors=colors, **kw)


def draw_bboxes(self, bboxes, *a, edge_colors=None, **kw):
    _log(colours=[[int(v) for v in c] for c in edge_colors])
    return _boxes(self, bboxes, *a, edge_colors=edge_colors, **kw)


DetLocalVisualizer.add_datasample, DetLocalVisualizer._draw_instances = add_datasample, \\
    _draw_instances
DetLocalVisualizer.draw_texts, DetLocalVisualizer.draw_bboxes = draw_texts, draw_bboxes
'''


def _random_checkpoint(config, path):
    """A checkpoint of the config's model with its initial (untrained) weights."""
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import save_checkpoint
    init_default_scope('mmdet')
    torch.manual_seed(0)
    save_checkpoint(dict(state_dict=MODELS.build(Config.fromfile(config).model).state_dict()),
                    path)
    return path


@pytest.mark.slow
@pytest.mark.real_data
def test_stock_mmdet_test_show_dir_draws_class_names_on_real_data(shared_real, tmp_path):
    """mmdet's own tools/test.py --show-dir on the real person (COCO) + animal (AP-10K)
    samples: the drawn GT texts are each image's annotated category names ('person' on
    COCO images, the AP-10K species on animal images), predictions are drawn under unified
    class names, and every class has its own colour."""
    data = str(tmp_path / 'real')
    for sub in ('coco', 'ap10k'):
        shutil.copytree(osp.join(shared_real, sub), osp.join(data, sub))
    spy_dir = tmp_path / 'spy'
    spy_dir.mkdir()
    (spy_dir / 'draw_spy.py').write_text(_SPY)
    # custom_imports are imported when the config is read, before --cfg-options apply
    config = tmp_path / 'real_det_spied.py'
    config.write_text(f"_base_ = ['{REAL_DET}']\ncustom_imports = dict(imports=['mtl_plugin', "
                      "'draw_spy'], allow_failed_imports=False)\n")
    ckpt = _random_checkpoint(REAL_DET, str(tmp_path / 'random.pth'))
    log = str(tmp_path / 'draw.jsonl')
    opts = [f'test_dataloader.dataset.datasets.{i}.data_root={data}/' for i in (0, 1)] + [
        f'test_evaluator.metrics.person.ann_file={data}/coco/test_coco.json',
        f'test_evaluator.metrics.animal.ann_file={data}/ap10k/test_ap10k.json',
        'model.test_cfg.max_per_img=3', 'model.test_cfg.nms_pre=30', 'test_dataloader.dataset.pipeline.1.scale=(160,160)',
        'default_hooks.visualization.score_thr=0.0']
    env = dict(os.environ, PYTHONPATH=f'{REPO}:{spy_dir}', OMP_NUM_THREADS='2', DRAW_LOG=log)
    proc = subprocess.run([PYTHON, STOCK_MMDET_TEST, str(config), ckpt, '--work-dir',
                           str(tmp_path / 'work'), '--show-dir', 'show', '--cfg-options',
                           *opts], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert 'person/coco/bbox_mAP:' in proc.stdout + proc.stderr
    records = [json.loads(line) for line in open(log)]
    want = _check_drawing(records, data)
    shown = {osp.basename(p) for p in _files(str(tmp_path / 'work'))}
    assert shown == set(want)  # one drawing per test image


def _files(work):
    return [osp.join(d, f) for d, _, fs in os.walk(work) for f in fs
            if f.endswith('.jpg') and '/show' in d]


def _check_drawing(records, data):
    """GT texts are the annotated names; one colour per class name, distinct ones."""
    want = {}
    for folder, ann in (('coco', 'test_coco.json'), ('ap10k', 'test_ap10k.json')):
        coco = json.load(open(osp.join(data, folder, ann)))
        names = {c['id']: c['name'] for c in coco['categories']}
        for img in coco['images']:
            want[img['file_name']] = sorted(names[a['category_id']] for a in coco['annotations']
                                            if a['image_id'] == img['id'])
    texts, colours = {}, {}
    for r in records:
        key = (r['name'], r['part'])
        if 'text' in r:
            texts.setdefault(key, []).append(r['text'].split(':')[0])
        else:
            colours.setdefault(key, []).extend(map(tuple, r['colours']))
    assert {name: sorted(texts.get((name, 0), [])) for name in want} == want
    assert set(want['000000000004.jpg'] + want['000000037516.jpg']).isdisjoint({'person'})
    colour_of = {}
    for key, names in texts.items():
        assert len(names) == len(colours[key])
        for name, colour in zip(names, colours[key]):
            assert colour_of.setdefault(name, colour) == colour, name
    preds = {n for (_, part), ns in texts.items() if part == 1 for n in ns}
    assert 'person' in preds and len(preds) >= 2  # both heads' boxes, named in unified classes
    assert len(set(colour_of.values())) == len(colour_of)
    return want


@pytest.mark.slow
@torch.no_grad()
def test_partitioned_heads_at_mmdet_doors(synthetic_root, tmp_path):
    """Partitioned heads with an own last tower conv (issue 14, ``shared_convs=1``) through
    mmdet's own tools/train.py and tools/test.py --show-dir, and the checkpoint through
    DetInferencer: the stand-ins stay out of the checkpoint, each head's own conv is in it,
    and the merged predictions are in the unified classes, as init_detector gives them."""
    import glob

    from mmdet.apis import DetInferencer, inference_detector, init_detector
    from conftest import run_tool
    stock = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
    work = str(tmp_path)
    cfg = _runner_cfg(synthetic_root, work)
    cfg.custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)  # as users'
    cfg.default_hooks.visualization = dict(type='DetVisualizationHook')  # for --show-dir
    cfg.model.partition_heads = dict(shared_convs=1)
    for head in cfg.model.heads.values():
        head.stacked_convs = 2
    config = str(tmp_path / 'partitioned.py')
    cfg.dump(config)
    run_tool([PYTHON, osp.join(stock, 'train.py'), config, '--work-dir', work])
    ckpt = osp.join(work, 'iter_1.pth')
    keys = torch.load(ckpt, weights_only=False)['state_dict']
    assert 'heads.person.cls_convs.1.conv.weight' in keys  # its own last conv
    assert not any(k.startswith('heads.person.cls_convs.0.') for k in keys)  # shared
    res = run_tool([PYTHON, osp.join(stock, 'test.py'), config, ckpt, '--work-dir', work,
                    '--show-dir', 'vis'])
    assert res.stdout.count('Average Precision  (AP) @[ IoU=0.50:0.95') >= 2  # per dataset
    assert glob.glob(osp.join(work, '*', 'vis', '*.*g'))
    img = _image(synthetic_root, 'animal')
    inferencer = DetInferencer(model=config, weights=ckpt, device='cpu')
    assert inferencer.model.dataset_meta['classes'] == UNIFIED
    got = inferencer(img, return_datasamples=True)['predictions'][0].pred_instances
    want = inference_detector(init_detector(config, ckpt, device='cpu'), img).pred_instances
    assert torch.equal(got.bboxes, want.bboxes) and torch.equal(got.labels, want.labels)
