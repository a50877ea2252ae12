"""HierarchicalClassifier, classification data (generated + COCO crops) and metrics."""
import copy
import hashlib
import json
import math
import os
import os.path as osp
import subprocess
import uuid

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, METRICS, MODELS, TRANSFORMS, DefaultScope
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

from conftest import PYTHON, REPO, run_tool
from mtl_plugin.datasets import MultiSourceDataset
from mtl_plugin.evaluation import GroupedMetric
from mtl_plugin.synthetic import ClsGeneratorConfig, generate_classification

SYNTH_CFG = osp.join(REPO, 'configs/classifier/hier-cls_resnet18_1xb32-10e_synthetic.py')
REAL_CFG = osp.join(REPO, 'configs/classifier/hier-cls_resnet18_1xb16-2e_coco-ap10k-crops.py')
GROUPS = dict(person=('person', 'rider'), animal=('cat', 'bird', 'dog'))
META = dict(group_names=('person', 'animal'), group_name_to_id=dict(person=0, animal=1),
            group_metainfo={g: dict(classes=c) for g, c in GROUPS.items()})


def build_model(**kw):
    cfg = dict(type='HierarchicalClassifier',
               backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, ),
                             norm_cfg=dict(type='BN')),
               dataset_head=dict(type='DatasetClsHead', in_channels=64, hidden_channels=None),
               heads=dict(person=dict(num_classes=2), animal=dict(num_classes=3)))
    cfg.update(kw)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def sample(group, label=None, **meta):
    s = BaseDataElement(metainfo=dict(group_name=group, group_id=int(group == 'animal'), **meta))
    if label is not None:
        s.gt_label = torch.tensor([label])
    return s


def set_logits(model, person, animal, dataset):
    """Make sample i's logits the i-th columns of the given (K, B) tables.

    The pooled feature of sample i becomes the one-hot e_i (C = 64 >= B), and each head a
    bias-free linear layer whose weight holds the wanted logits.
    """
    batch = len(person[0])
    model.extract_feat = lambda inputs: torch.eye(64)[:batch]
    for layer, table in ((model.heads.person, person), (model.heads.animal, animal),
                         (model.dataset_head.classifier, dataset)):
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.zero_()
            layer.weight[:, :batch] = torch.tensor(table, dtype=torch.float)


class Recorder:
    def __init__(self):
        self.calls = []

    def record(self, data_samples, confidences, correct):
        self.calls.append((list(data_samples), confidences, correct))


# ---------------------------------------------------------------------- loss
L2, L3 = math.log(2.0), math.log(3.0)


@pytest.mark.parametrize('alpha', [0.0, 0.3, 1.0])
def test_loss_alpha_weighting_exact(alpha):
    model = build_model(alpha=alpha)
    # samples: person y=0, person y=0, animal y=2, animal y=0
    set_logits(model,
               person=[[0, L3, 0, 0], [0, 0, 0, 0]],
               animal=[[0, 0, 0, L2], [0, 0, 0, 0], [0, 0, 0, 0]],
               dataset=[[0, 0, 0, 0], [0, 0, 0, 0]])
    recorder = Recorder()
    samples = [sample('person', 0), sample('person', 0), sample('animal', 2),
               sample('animal', 0)]
    with model.recording(recorder):
        losses = model.loss(torch.zeros(4, 3, 32, 32), samples)
    assert list(losses) == ['person.loss_cls', 'animal.loss_cls', 'dataset.loss_dataset_cls',
                            'dataset.acc_dataset_cls']
    # CE: log 2 (0 vs 0), log(4/3) (ln3 vs 0), log 3 (uniform of 3), log 2 (ln2, 0, 0)
    person = (1 - alpha) * (L2 + math.log(4 / 3)) / 4
    animal = (1 - alpha) * (L3 + L2) / 4
    assert losses['person.loss_cls'].item() == pytest.approx(person, abs=1e-6)
    assert losses['animal.loss_cls'].item() == pytest.approx(animal, abs=1e-6)
    assert losses['dataset.loss_dataset_cls'].item() == pytest.approx(alpha * L2, abs=1e-6)
    assert losses['dataset.acc_dataset_cls'].item() == 50.0  # ties -> group 0
    mean_ce = (L2 + math.log(4 / 3) + L3 + L2) / 4
    total = losses['person.loss_cls'] + losses['animal.loss_cls']
    assert total.item() == pytest.approx((1 - alpha) * mean_ce, abs=1e-6)
    # data-map hook point: p(gold) in the sample's own head, and argmax == gold
    (recorded, conf, correct), = recorder.calls
    assert recorded == samples
    assert [c.shape for c in conf] == [(1, )] * 4 and not any(c.requires_grad for c in conf)
    assert torch.cat(conf).tolist() == pytest.approx([0.5, 0.75, 1 / 3, 0.5])
    assert torch.cat(correct).tolist() == [True, True, False, True]
    assert model.consume_active_heads() == {'person', 'animal'}


def test_loss_single_group_batch_and_backward():
    model = build_model()
    samples = [sample('animal', 1), sample('animal', 2)]
    losses = model.loss(torch.rand(2, 3, 32, 32), samples)
    assert set(losses) == {'animal.loss_cls', 'dataset.loss_dataset_cls',
                           'dataset.acc_dataset_cls'}
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.heads.person.weight.grad is None  # idle head: no gradient at all
    assert model.heads.animal.weight.grad is not None
    assert model.backbone.conv1.weight.grad is not None


# ---------------------------------------------------------------------- predict
def test_predict_on_hand_set_logits():
    model = build_model().eval()
    # sample 0: known person, dataset says animal; 1: known animal, dataset says person;
    # 2: no group known (plain inference), dataset says animal
    set_logits(model,
               person=[[3, 0, 0], [0, 1, 0]],
               animal=[[0, 0, 4], [2, 0, 0], [0, 5, 1]],
               dataset=[[0, 2, 0], [1, 0, 1]])
    samples = [sample('person'), sample('animal'), BaseDataElement()]
    out = model.predict(torch.zeros(3, 3, 32, 32), samples)
    assert out is samples
    assert [s.pred_group_name for s in out] == ['animal', 'person', 'animal']
    assert [s.pred_group_id for s in out] == [1, 0, 1]
    p = 1 / (1 + math.exp(-1))  # softmax(0, 1)[1]
    assert [float(s.pred_group_score) for s in out] == pytest.approx(
        [p, 1 / (1 + math.exp(-2)), p])
    assert torch.allclose(out[0].pred_group_scores, torch.tensor([1 - p, p]))
    assert [int(s.pred_label) for s in out] == [1, 1, 0]  # head of the predicted group
    assert [int(s.pred_label_known) for s in out] == [0, 2, 0]  # head of the known group
    assert out[0].pred_label.shape == (1, ) and out[0].pred_label.dtype == torch.long
    assert torch.allclose(out[0].pred_score, torch.tensor([3.0, 0.0]).softmax(0))
    assert torch.allclose(out[1].pred_score, torch.tensor([0.0, 0.0, 5.0]).softmax(0))
    assert torch.allclose(out[2].pred_score, torch.tensor([4.0, 0.0, 1.0]).softmax(0))


def test_forward_tensor_returns_raw_logits():
    model = build_model(heads=dict(person=dict(num_classes=2, hidden_channels=16),
                                   animal=dict(num_classes=3))).eval()
    assert isinstance(model.heads.person, torch.nn.Sequential)
    assert model.heads.person[0].out_features == 16
    logits = model(torch.rand(2, 3, 32, 32), mode='tensor')
    assert list(logits) == ['dataset', 'person', 'animal']
    assert [tuple(v.shape) for v in logits.values()] == [(2, 2), (2, 2), (2, 3)]
    with pytest.raises(RuntimeError, match='Invalid mode "bad"'):
        model(torch.rand(2, 3, 32, 32), mode='bad')


def test_group_ids_follow_dataset_meta():
    model = build_model()
    meta = copy.deepcopy(META)
    meta['group_name_to_id'] = dict(person=1, animal=0)
    model.dataset_meta = meta
    assert model.group_of_class(0) == 'animal'
    with pytest.raises(ValueError, match='has group_id=0, but the model maps'):
        model.loss(torch.rand(1, 3, 32, 32), [sample('person', 0)])


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize('alpha', [-0.1, 1.5, float('nan'), True, '0.3'])
def test_alpha_out_of_range(alpha):
    with pytest.raises(ValueError, match=r'alpha must be a number in \[0, 1\]'):
        build_model(alpha=alpha)
    model = build_model()
    with pytest.raises(ValueError, match='alpha'):
        model.alpha = alpha
    model.alpha = 0.75  # settable, e.g. by CurriculumLearningHook
    assert model.alpha == 0.75


def test_unknown_group_is_a_clear_error():
    model = build_model()
    with pytest.raises(KeyError, match=r'group "zebra" has no class head.*configured heads: '
                       r'.*person.*animal'):
        model.loss(torch.rand(2, 3, 32, 32), [sample('person', 0), sample('zebra', 0)])
    meta = copy.deepcopy(META)
    meta['group_metainfo']['zebra'] = dict(classes=('z', ))
    with pytest.raises(KeyError, match='group "zebra" has no class head'):
        model.dataset_meta = meta


def test_num_classes_mismatch():
    model = build_model()
    model.dataset_meta = META
    meta = copy.deepcopy(META)
    meta['group_metainfo']['animal']['classes'] = ('cat', 'bird')
    with pytest.raises(ValueError, match=r'heads\["animal"\].num_classes is 3 but dataset '
                       r'"animal" has 2 classes'):
        model.dataset_meta = meta


def test_construction_errors():
    with pytest.raises(ValueError, match='loss_weight must be 1'):
        build_model(dataset_head=dict(type='DatasetClsHead', in_channels=64, loss_weight=0.3))
    with pytest.raises(ValueError, match='num_groups=3 must equal the number of heads'):
        build_model(dataset_head=dict(type='DatasetClsHead', in_channels=64, num_groups=3))
    with pytest.raises(ValueError, match=r"head name 'dataset'"):
        build_model(heads=dict(dataset=dict(num_classes=2), animal=dict(num_classes=3)))
    with pytest.raises(ValueError, match=r'heads\["animal"\].num_classes must be an int'):
        build_model(heads=dict(person=dict(num_classes=2), animal=dict(num_classes=0)))
    with pytest.raises(TypeError, match=r'heads\["animal"\] must be dict'):
        build_model(heads=dict(person=dict(num_classes=2), animal=dict(num_clases=3)))
    with pytest.raises(ValueError, match='64 channels, but dataset_head.in_channels is 32'):
        build_model(dataset_head=dict(type='DatasetClsHead', in_channels=32)).loss(
            torch.rand(2, 3, 32, 32), [sample('person', 0), sample('animal', 1)])


# ---------------------------------------------------------------------- metrics
def _pred(group, gt, known, pred_group, pred, score=None):
    d = dict(group_name=group, gt_label=torch.tensor([gt]), pred_label_known=torch.tensor([known]),
             pred_group_name=pred_group, pred_label=torch.tensor([pred]))
    if score is not None:
        d['pred_score'] = torch.tensor(score)
    return d


def test_hierarchical_accuracy_values():
    metric = METRICS.build(dict(type='HierarchicalAccuracy'))
    metric.dataset_meta = META
    metric.process({}, [
        _pred('animal', 0, 0, 'animal', 0),  # all right
        _pred('person', 1, 1, 'person', 1),  # all right
        _pred('person', 0, 0, 'animal', 0),  # class right, dataset wrong
        _pred('person', 1, 0, 'person', 0),  # class wrong
        _pred('person', 0, 0, 'person', 1),  # known right, end-to-end wrong
        _pred('animal', 2, 1, 'animal', 2),  # known wrong, end-to-end right
    ])
    out = metric.evaluate(6)
    assert out == pytest.approx({
        'person/accuracy': 75.0, 'person/dataset_accuracy': 75.0, 'person/e2e_accuracy': 25.0,
        'animal/accuracy': 50.0, 'animal/dataset_accuracy': 100.0,
        'animal/e2e_accuracy': 100.0, 'dataset_accuracy': 500 / 6,
        'mean/accuracy': 62.5, 'mean/dataset_accuracy': 87.5, 'mean/e2e_accuracy': 62.5})
    assert list(out)[:3] == ['person/accuracy', 'person/dataset_accuracy',
                             'person/e2e_accuracy']  # dataset order


def test_cls_accuracy_topk_and_inside_grouped_metric():
    metric = METRICS.build(dict(type='ClsAccuracy', topk=(1, 2)))
    samples = [_pred('animal', 0, 0, 'animal', 0, [0.7, 0.2, 0.1]),  # rank 0
               _pred('animal', 2, 0, 'animal', 0, [0.5, 0.2, 0.3]),  # rank 1
               _pred('animal', 1, 0, 'animal', 0, [0.5, 0.1, 0.4])]  # rank 2
    metric.process({}, samples)
    assert metric.evaluate(3) == pytest.approx({'accuracy/top1': 100 / 3,
                                                'accuracy/top2': 200 / 3})
    grouped = GroupedMetric(metrics=dict(person=dict(type='ClsAccuracy'),
                                         animal=dict(type='ClsAccuracy', topk=(1, 2))))
    grouped.dataset_meta = META
    grouped.process({}, samples + [_pred('person', 1, 1, 'person', 1, [0.4, 0.6])])
    assert grouped.evaluate(4) == pytest.approx({
        'person/accuracy/top1': 100.0, 'animal/accuracy/top1': 100 / 3,
        'animal/accuracy/top2': 200 / 3, 'mean/accuracy/top1': (100 + 100 / 3) / 2}, abs=1e-3)
    with pytest.raises(ValueError, match='topk must be a positive int'):
        METRICS.build(dict(type='ClsAccuracy', topk=(0, )))
    with pytest.raises(KeyError, match='no "pred_score"'):
        metric.process({}, [dict(gt_label=torch.tensor([0]))])


# ---------------------------------------------------------------------- data
def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            with open(osp.join(dirpath, f), 'rb') as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


def test_generator_deterministic_and_format(tmp_path):
    cfg = dict(num_train=2, num_val=1, img_size=32)
    files = generate_classification(str(tmp_path / 'a'), ClsGeneratorConfig(seed=1, **cfg))
    generate_classification(str(tmp_path / 'b'), ClsGeneratorConfig(seed=1, **cfg))
    generate_classification(str(tmp_path / 'c'), ClsGeneratorConfig(seed=2, **cfg))
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b')
    assert _digest(tmp_path / 'a') != _digest(tmp_path / 'c')
    assert sorted(files) == ['cls_animal_train', 'cls_animal_val', 'cls_person_train',
                             'cls_person_val']
    ann = json.load(open(files['cls_animal_train']))
    assert ann['metainfo'] == dict(classes=['cat', 'bird', 'dog'])
    assert [d['gt_label'] for d in ann['data_list']] == [0, 1, 2, 0, 1, 2]
    assert ann['data_list'][0]['img_path'] == 'images/cls/animal/train_00_00000.jpg'
    img = cv2.imread(str(tmp_path / 'a' / ann['data_list'][0]['img_path']))
    assert img.shape == (32, 32, 3)
    with pytest.raises(ValueError, match='img_size must be an int >= 16'):
        generate_classification(str(tmp_path / 'd'), ClsGeneratorConfig(img_size=8))


@pytest.mark.slow
def test_generate_data_tool_classification(tmp_path):
    run_tool([PYTHON, 'tools/generate_data.py', str(tmp_path / 'd'), '--classification',
              '--num-train', '1', '--num-val', '1'])
    ann = json.load(open(tmp_path / 'd' / 'annotations' / 'cls_person_val.json'))
    assert [d['gt_label'] for d in ann['data_list']] == [0, 1]
    assert cv2.imread(str(tmp_path / 'd' / ann['data_list'][0]['img_path'])).shape == (64, 64, 3)
    proc = subprocess.run([PYTHON, 'tools/generate_data.py', str(tmp_path / 'e'),
                           '--classification', '--num-test', '3'], cwd=REPO,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 2
    assert proc.stderr.strip() == 'error: --num-test does not apply to --classification'


@pytest.fixture(scope='module')
def cls_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cls'))
    generate_classification(root, ClsGeneratorConfig(num_train=2, num_val=1, img_size=32))
    return root


PIPELINE = [dict(type='mmcv.LoadImageFromFile'),
            dict(type='mmcv.Resize', scale=(32, 32), keep_ratio=False),
            dict(type='PackClsInputs')]


def test_multi_source_json_dataset_and_preprocessor(cls_root):
    ds = MultiSourceDataset([dict(type='ClsJsonDataset', group_name=g, data_root=cls_root,
                                  ann_file=f'annotations/cls_{g}_train.json', pipeline=PIPELINE)
                             for g in GROUPS])
    assert len(ds) == 10 and ds.group_ids.tolist() == [0] * 4 + [1] * 6
    assert ds.metainfo['group_metainfo']['animal']['classes'] == ('cat', 'bird', 'dog')
    item = ds[5]
    assert item['inputs'].dtype == torch.uint8 and item['inputs'].shape == (3, 32, 32)
    s = item['data_samples']
    assert (s.group_name, s.group_id, s.gt_label.tolist()) == ('animal', 1, [1])
    assert s.gt_label.dtype == torch.long and s.sample_idx == 1
    assert s.img_path == osp.join(cls_root, 'images/cls/animal/train_01_00000.jpg')
    with DefaultScope.overwrite_default_scope('mmdet'):
        pre = MODELS.build(dict(type='ImgDataPreprocessor', mean=[0, 0, 0], std=[255] * 3,
                                bgr_to_rgb=True))
    batch = pre(dict(inputs=[ds[0]['inputs'], item['inputs']],
                     data_samples=[ds[0]['data_samples'], s]))
    assert batch['inputs'].shape == (2, 3, 32, 32)
    assert torch.allclose(batch['inputs'][1], item['inputs'].flip(0).float() / 255)


def test_json_dataset_rejects_bad_labels(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(dict(metainfo=dict(classes=['a', 'b']),
                                    data_list=[dict(img_path='x.jpg', gt_label=2)])))
    with pytest.raises(ValueError, match=r'gt_label must be an int in \[0, 2\), but got 2'):
        DATASETS.build(dict(type='ClsJsonDataset', ann_file=str(path)))


@pytest.mark.real_data
def test_coco_crops_match_the_file(shared_real):
    for folder, ann_file in (('coco', 'test_coco.json'), ('ap10k', 'test_ap10k.json')):
        coco = json.load(open(osp.join(shared_real, folder, ann_file)))
        ds = DATASETS.build(dict(type='CocoCropClsDataset', data_root=shared_real,
                                 ann_file=f'{folder}/{ann_file}',
                                 data_prefix=dict(img_path=folder), min_size=11))
        cats = sorted(coco['categories'], key=lambda c: c['id'])
        assert ds.metainfo['classes'] == tuple(c['name'] for c in cats)
        label = {c['id']: i for i, c in enumerate(cats)}
        kept = [a for a in coco['annotations'] if not a['iscrowd'] and min(a['bbox'][2:]) >= 11]
        assert len(ds) == len(kept)
        for i, ann in enumerate(kept):
            info = ds.get_data_info(i)
            x, y, w, h = ann['bbox']
            assert info['bbox'] == [x, y, x + w, y + h]
            assert (info['ann_id'], info['img_id']) == (ann['id'], ann['image_id'])
            assert info['gt_label'] == label[ann['category_id']]
    assert len(kept) == 2 and ds.metainfo['classes'][ds.get_data_info(0)['gt_label']] == 'jaguar'
    # the person box 10.69 px wide is dropped by min_size=11
    coco_ds = DATASETS.build(dict(type='CocoCropClsDataset', data_root=shared_real,
                                  ann_file='coco/test_coco.json', data_prefix=dict(img_path='coco'),
                                  min_size=11))
    assert 1202706 not in [coco_ds.get_data_info(i)['ann_id'] for i in range(len(coco_ds))]
    sub = DATASETS.build(dict(type='CocoCropClsDataset', data_root=shared_real,
                              ann_file='ap10k/test_ap10k.json', data_prefix=dict(img_path='ap10k'),
                              metainfo=dict(classes=('jaguar', 'antelope'))))
    assert [sub.get_data_info(i)['gt_label'] for i in range(len(sub))] == [0, 1]


@pytest.mark.real_data
def test_crop_and_pack_transforms(shared_real):
    ds = DATASETS.build(dict(type='CocoCropClsDataset', data_root=shared_real,
                             ann_file='coco/test_coco.json', data_prefix=dict(img_path='coco')))
    info = ds.get_data_info(0)  # bbox [280.79, 44.73, 499.49, 391.41]
    load = TRANSFORMS.build(dict(type='mmcv.LoadImageFromFile'))
    full = load(dict(info))['img']
    crop = TRANSFORMS.build(dict(type='CropInstance', padding=0.0))
    out = crop(load(dict(info)))
    assert out['crop_bbox'] == [280, 44, 499, 391]
    assert np.array_equal(out['img'], full[44:391, 280:499]) and out['img_shape'] == (347, 219)
    padded = TRANSFORMS.build(dict(type='CropInstance', padding=0.1))(load(dict(info)))
    # + 10 % of 218.7 x 346.68 per side, clipped to the 640 x 425 image
    assert padded['crop_bbox'] == [258, 10, 521, 425]
    assert np.array_equal(padded['img'], full[10:425, 258:521])
    packed = TRANSFORMS.build(dict(type='PackClsInputs'))(padded)
    assert packed['inputs'].shape == (3, 415, 263) and packed['inputs'].dtype == torch.uint8
    s = packed['data_samples']
    assert s.gt_label.tolist() == [0] and (s.img_id, s.ann_id, s.sample_idx) == (785, 442619, 0)
    assert repr(crop) == 'CropInstance(padding=0.0)'
    assert repr(TRANSFORMS.build(dict(type='PackClsInputs', meta_keys=('img_id', )))) == \
        "PackClsInputs(meta_keys=('img_id',))"
    with pytest.raises(ValueError, match='padding must be a finite number >= 0'):
        TRANSFORMS.build(dict(type='CropInstance', padding=-0.1))
    with pytest.raises(KeyError, match='CropInstance needs "img" and "bbox"'):
        crop(dict(img=full))


# ---------------------------------------------------------------------- Runner
def _runner_cfg(root, work_dir, **dataset_head):
    cfg = Config.fromfile(SYNTH_CFG)
    cfg.model.backbone.base_channels = 8
    cfg.model.dataset_head.update(in_channels=64, **dataset_head)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.batch_size = 4
        for source in loader.dataset.datasets:
            source.data_root = root
            source.pipeline[1].scale = (32, 32)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                             checkpoint=dict(type='CheckpointHook', interval=100))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'hier_{uuid.uuid4().hex[:8]}'
    cfg.log_level = 'WARNING'
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('grl', [False, True])
def test_runner_trains_and_validates(cls_root, tmp_path, grl):
    cfg = _runner_cfg(cls_root, tmp_path, gradient_reversal=grl)
    if grl:
        cfg.custom_hooks.append(dict(type='CurriculumLearningHook', schedules=[
            dict(param='model.alpha', type='linear', start=0.5, end=0.1, by_epoch=False)]))
    with DefaultScope.overwrite_default_scope('mmdet'):
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = runner.val()
    model = runner.model
    assert runner.iter == 2 and model.dataset_head.gradient_reversal is grl
    assert model.groups.to_dict() == dict(person=0, animal=1)  # met in the samples, no hook
    scalars = runner.message_hub.log_scalars
    assert {'train/person.loss_cls', 'train/animal.loss_cls',
            'train/dataset.loss_dataset_cls'} <= set(scalars)
    assert set(metrics) >= {'person/accuracy', 'animal/e2e_accuracy', 'dataset_accuracy',
                            'mean/e2e_accuracy'}
    assert all(0 <= v <= 100 for v in metrics.values())
    if grl:  # alpha driven by the curriculum: 0.5 at iter 0, 0.3 at iter 1 of 2
        assert model.alpha == pytest.approx(0.3)


def test_configs_build():
    for path in (SYNTH_CFG, REAL_CFG):
        cfg = Config.fromfile(path)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            model = MODELS.build(cfg.model)
        assert model.alpha == 0.3 and list(model.heads) == ['person', 'animal']
