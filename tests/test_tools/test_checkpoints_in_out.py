"""Checkpoints in and out: a head (+ backbone / neck) from a stock single-head checkpoint, and
one head exported as a stock config + checkpoint that plain mmdet / mmpose run without the
plugin, with bit-identical predictions."""
import copy
import json
import os.path as osp

import mmcv
import mmdet
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.utils import get_test_pipeline_cfg
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.model.weight_init import bias_init_with_prob
from mmengine.registry import MODELS, init_default_scope
from tiny_pose import tiny_head, tiny_pose_config
from tiny_models import (GROUP_CLASSES, META, TEST_CFG, TRAIN_CFG, backbone_neck, batch,
                         build_detector, retina, write_tiny_config)

from conftest import PYTHON, run_tool
from mtl_plugin.checkpoints import (PluginTypeError, SingleHeadMismatchError, export_head,
                                    load_single_head)
from mtl_plugin.checkpoints.stock_config import stock_module_cfg


def _perturb(model, seed):
    """Parameters and BN statistics unlike any default init (so equality means copied)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.add_((torch.rand(t.shape, generator=g) - 0.5) * 0.02 + ('running_var' in name))
    return model


def stock_retinanet(num_classes=1, seed=1):
    """A stock mmdet RetinaNet of the tiny multi-head model's layout, trained-looking."""
    init_default_scope('mmdet')
    cfg = dict(type='RetinaNet', **backbone_neck(), bbox_head=retina(num_classes),
               train_cfg=TRAIN_CFG, test_cfg=TEST_CFG, init_cfg=None)
    torch.manual_seed(seed)
    model = MODELS.build(ConfigDict(cfg))  # heads read test_cfg by attribute
    model.init_weights()
    return _perturb(model, seed).eval()


@pytest.fixture(scope='module')
def stock_ckpt(tmp_path_factory):
    model = stock_retinanet()
    path = str(tmp_path_factory.mktemp('stock') / 'person_retinanet.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(
        dataset_meta=dict(classes=('person', )))), path)
    return model, path


def _same(a, b):
    """Names of the tensors that differ (or are missing) between two state dicts."""
    return sorted(k for k in set(a) | set(b)
                  if k not in a or k not in b or not torch.equal(a[k], b[k]))


def _assert_person_from_stock(model, stock):
    state, ref = model.state_dict(), stock.state_dict()
    for src, dst in (('backbone.', 'backbone.'), ('neck.', 'neck.'),
                     ('bbox_head.', 'heads.person.')):
        part = {k[len(src):]: v for k, v in ref.items() if k.startswith(src)}
        mine = {k[len(dst):]: v for k, v in state.items() if k.startswith(dst)}
        assert part and _same(part, mine) == [], (src, _same(part, mine))


def _assert_animal_own_init(model, stock):
    animal = model.heads.animal
    # RetinaHead's own init: prior-probability bias of the classifier, N(0, 0.01) convs
    assert torch.equal(animal.retina_cls.bias,
                       torch.full_like(animal.retina_cls.bias, bias_init_with_prob(0.01)))
    assert 0.005 < float(animal.retina_reg.weight.detach().std()) < 0.02
    stock_values = [t for t in stock.state_dict().values() if t.is_floating_point()]
    for name, t in animal.state_dict().items():
        if t.is_floating_point() and t.numel() > 1:
            assert not any(t.shape == s.shape and torch.equal(t, s) for s in stock_values), name


def test_init_cfg_single_head_pretrained(stock_ckpt):
    stock, path = stock_ckpt
    model = build_detector(init_cfg=dict(type='SingleHeadPretrained', checkpoint=path,
                                         head='person'))  # model.init_weights(), as Runner
    _assert_person_from_stock(model, stock)
    _assert_animal_own_init(model, stock)


def test_mmengine_pretrained_prefix_route(stock_ckpt):
    """MMEngine's own Pretrained + prefix per module, config only: the same tensors."""
    stock, path = stock_ckpt
    parts = backbone_neck()
    for part in ('backbone', 'neck'):
        parts[part]['init_cfg'] = dict(type='Pretrained', checkpoint=path, prefix=f'{part}.')
    person = dict(retina(1), init_cfg=dict(type='Pretrained', checkpoint=path,
                                           prefix='bbox_head.'))
    model = build_detector(heads=dict(person=person, animal=retina(2)), **parts)
    _assert_person_from_stock(model, stock)
    _assert_animal_own_init(model, stock)


def test_load_single_head_predictions_equal_stock(stock_ckpt):
    stock, path = stock_ckpt
    model = build_detector(head_classes={g: list(c) for g, c in GROUP_CLASSES.items()})
    animal_before = copy.deepcopy(model.heads.animal.state_dict())
    loaded = load_single_head(model, path, head='person')
    assert loaded == {'heads.person': len(stock.bbox_head.state_dict()),
                      'backbone': len(stock.backbone.state_dict()),
                      'neck': len(stock.neck.state_dict())}
    _assert_person_from_stock(model, stock)
    assert _same(animal_before, model.heads.animal.state_dict()) == []  # untouched
    model.eval()
    data = model.data_preprocessor(batch(['person', 'animal'], seed=3), False)
    with torch.no_grad():
        mine = model.predict_per_head(data['inputs'], data['data_samples'])['person']
        ref = stock.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    assert [len(r.pred_instances) for r in ref] == [20, 20]  # score_thr=0: max_per_img each
    for got, want in zip(mine, ref):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(got[key], want.pred_instances[key]), key


def test_load_single_head_names_mismatched_keys(stock_ckpt):
    _, path = stock_ckpt
    model = build_detector()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(SingleHeadMismatchError) as err:
        load_single_head(model, path, head='animal')  # 2 classes vs the checkpoint's 1
    message = str(err.value)
    assert 'bbox_head.retina_cls.weight (1, 16, 3, 3) -> heads.animal.retina_cls.weight ' \
        '(2, 16, 3, 3)' in message and 'bbox_head.retina_cls.bias (1,)' in message
    assert 'backbone' not in message.split('. Configure')[0].split('shape mismatches')[0]
    assert _same(before, model.state_dict()) == []  # nothing loaded when a part does not fit
    with pytest.raises(KeyError, match="head='dog' is not a head of the model; heads: "
                       r"\['person', 'animal'\]"):
        load_single_head(model, path, head='dog')
    state = {k: v for k, v in torch.load(path)['state_dict'].items()
             if not k.startswith('neck.layer')}
    with pytest.raises(SingleHeadMismatchError, match=r'missing in the checkpoint: '
                       r'neck\.fpn_convs\.0\.conv\.bias'):
        load_single_head(model, {k: v for k, v in state.items()
                                 if not k.startswith('neck.fpn_convs')}, head='person')


def _pose_batch(cfg, img, group=None):
    """``inference_topdown``'s batch of :data:`BBOXES` on ``img`` (COCO keypoint meta)."""
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    meta = parse_pose_metainfo(dict(from_file='configs/_base_/datasets/coco.py'))
    pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
    data = []
    for bbox in BBOXES:
        packed = pipeline(dict(img_path=img, bbox=bbox[None],
                               bbox_score=np.ones(1, dtype=np.float32), **meta))
        if group is not None:
            packed['data_samples'].set_metainfo(dict(group_name=group))
        data.append(packed)
    return pseudo_collate(data)


def test_pose_head_and_backbone_from_a_stock_topdown_checkpoint(tmp_path):
    cfg = tiny_pose_config(str(tmp_path / 'no_data'))
    init_default_scope('mmpose')
    stock = _built(Config(dict(model=dict(
        type='TopdownPoseEstimator', data_preprocessor=cfg.model.data_preprocessor,
        backbone=cfg.model.backbone, head=tiny_head(17), test_cfg=cfg.model.test_cfg))),
        'mmpose', seed=5)
    path = str(tmp_path / 'stock_pose.pth')
    torch.save(dict(state_dict=stock.state_dict()), path)
    cfg.model.init_cfg = dict(type='SingleHeadPretrained', checkpoint=path, head='person')
    model = _built(cfg, 'mmpose', seed=0, perturb=False)  # init_weights() applies it
    assert _same({k: v for k, v in stock.state_dict().items() if k.startswith('backbone.')},
                 {k: v for k, v in model.state_dict().items() if k.startswith('backbone.')}) == []
    assert _same({k[len('head.'):]: v for k, v in stock.state_dict().items()
                  if k.startswith('head.')},
                 {k[len('heads.person.'):]: v for k, v in model.state_dict().items()
                  if k.startswith('heads.person.')}) == []
    animal = model.heads.animal.final_layer  # HeatmapHead's own init: N(0, 0.001), bias 0
    assert torch.equal(animal.bias, torch.zeros(20)) and float(animal.weight.detach().std()) < 0.002
    img = str(tmp_path / 'image.png')
    mmcv.imwrite(np.random.default_rng(1).integers(0, 255, (128, 128, 3), dtype=np.uint8), img)
    with torch.no_grad():
        want = stock.test_step(_pose_batch(cfg, img))
        got = model.test_step(_pose_batch(cfg, img, group='person'))
    for g, w in zip(got, want):
        assert np.array_equal(g.pred_instances.keypoints, w.pred_instances.keypoints)
        assert np.array_equal(g.pred_instances.keypoint_scores,
                              w.pred_instances.keypoint_scores)


# ---------------------------------------------------------------------------------- out
#: run by a Python that cannot import the plugin: plain mmdet / mmpose on the exported files
STOCK_SCRIPT = '''
import importlib.abc, json, runpy, sys


class NoPlugin(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'mtl_plugin':
            raise ImportError(name + ': the plugin is not installed here')


sys.meta_path.insert(0, NoPlugin())
import numpy as np
import torch
from mmdet.apis import inference_detector, init_detector
from mmpose.apis import inference_topdown, init_model

exp = torch.load(sys.argv[1], weights_only=False)
torch.set_num_threads(exp['threads'])  # as the parent: CPU kernels split sums by thread
dets = {}
for name, (cfg, pth, want) in exp['dets'].items():
    det = init_detector(cfg, pth, device='cpu')
    res = inference_detector(det, exp['img']).pred_instances
    dets[name] = dict(equal=[torch.equal(res[k], want[k]) for k in ('bboxes', 'scores', 'labels')],
                      boxes=len(res), classes=list(det.dataset_meta['classes']),
                      type=type(det).__name__)
pose = init_model(exp['pose_cfg'], exp['pose_pth'], device='cpu')
kpts = inference_topdown(pose, exp['img'], exp['bboxes'])
# mmdet's own tools/test.py on the exported detector (the person source's val set)
sys.argv = ['test.py', *exp['dets']['dense'][:2], '--work-dir', exp['work_dir']]
runpy.run_path(exp['mmdet_test'], run_name='__main__')
print('RESULT ' + json.dumps(dict(
    dets=dets,
    pose=[bool(np.array_equal(p.pred_instances[k], e[k])) for p, e in zip(kpts, exp['pose'])
          for k in ('keypoints', 'keypoint_scores')],
    pose_dataset=pose.dataset_meta['dataset_name'], pose_type=type(pose).__name__,
    plugin_modules=sorted(m for m in sys.modules if m.split('.')[0] == 'mtl_plugin'))))
'''
BBOXES = np.array([[10, 12, 90, 110], [30, 5, 120, 100]], dtype=np.float32)  # xyxy


def _multi_head_det(tmp, root):
    """The tiny 2-head detector's config (person loss group-weighted; data under ``root``)
    + a checkpoint."""
    path = write_tiny_config(root, str(tmp / 'multi_det.py'))
    cfg = Config.fromfile(path)
    for group, metric in cfg.test_evaluator.metrics.items():
        metric.ann_file = f'{root}/annotations/{group}_val.json'
    focal = dict(cfg.model.heads.person.loss_cls, type='mmdet.FocalLoss')
    cfg.model.heads.person.loss_cls = dict(type='GroupWeightedLoss', use_sigmoid=True,
                                           loss=focal, group_id_weight={1: 2.0})
    cfg.dump(path)
    model = _built(cfg, 'mmdet', seed=2)
    model.adopt(groups=dict(person=0, animal=1), label_space=dict(
        group_classes={g: list(c) for g, c in GROUP_CLASSES.items()}))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=META)),
               str(tmp / 'multi_det.pth'))
    return model, path, str(tmp / 'multi_det.pth')


def _built(cfg, scope, seed, perturb=True):
    init_default_scope(scope)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return (_perturb(model, seed) if perturb else model).eval()


def _multi_head_pose(tmp):
    cfg = tiny_pose_config(str(tmp / 'no_data'))  # COCO 17 + Animal-Pose 20 keypoints
    cfg.model.heads.person.loss = dict(type='GroupWeightedKeypointMSELoss',
                                       use_target_weight=True, group_id_weight={1: 2.0})
    path = str(tmp / 'multi_pose.py')
    cfg.dump(path)
    model = _built(cfg, 'mmpose', seed=3)
    model.adopt(groups=dict(person=0, animal=1), group_num_keypoints=dict(person=17, animal=20))
    torch.save(dict(state_dict=model.state_dict(), meta={}), str(tmp / 'multi_pose.pth'))
    return model, path, str(tmp / 'multi_pose.pth')


def _expected_det(model, cfg_path, img, head='person'):
    """The multi-head model's ``head`` on the stock pipeline's input of ``img``."""
    init_default_scope('mmdet')
    data = Compose(get_test_pipeline_cfg(Config.fromfile(cfg_path)))(dict(img_path=img,
                                                                         img_id=0))
    data = model.data_preprocessor(dict(inputs=[data['inputs']],
                                        data_samples=[data['data_samples']]), False)
    with torch.no_grad():
        res = model.predict_per_head(data['inputs'], data['data_samples'])[head][0]
    return {k: res[k] for k in ('bboxes', 'scores', 'labels')}


def _expected_pose(model, cfg_path, pth, img):
    """The multi-head model's person head on the boxes, as ``inference_topdown`` feeds a
    stock model (its dataset meta in every sample), routed to the person head."""
    init_default_scope('mmpose')
    meta = torch.load(pth, weights_only=True)['meta']['dataset_meta']
    pipeline = Compose(Config.fromfile(cfg_path).test_dataloader.dataset.pipeline)
    data = []
    for bbox in BBOXES:
        packed = pipeline(dict(img_path=img, bbox=bbox[None],
                               bbox_score=np.ones(1, dtype=np.float32), **meta))
        packed['data_samples'].set_metainfo(dict(group_name='person'))
        data.append(packed)
    with torch.no_grad():
        res = model.test_step(pseudo_collate(data))
    return [{k: r.pred_instances[k] for k in ('keypoints', 'keypoint_scores')} for r in res]


@pytest.fixture(scope='module')
def exported(tmp_path_factory, synthetic_root):
    """Every kind exported (the dense detector through the CLI) and the expected
    predictions."""
    tmp = tmp_path_factory.mktemp('export')
    img = str(tmp / 'image.png')
    mmcv.imwrite(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8),
                 img)
    det, det_cfg, det_ckpt = _multi_head_det(tmp, synthetic_root)
    run_tool([PYTHON, 'tools/export_head.py', det_cfg, det_ckpt, '--head', 'person',
              '--out-dir', str(tmp / 'out')])
    pose, pose_cfg, pose_ckpt = _multi_head_pose(tmp)
    pose_files = export_head(pose_cfg, pose_ckpt, 'person', str(tmp / 'out'))
    out = dict(det_cfg=str(tmp / 'out' / 'multi_det_person.py'),
               det_pth=str(tmp / 'out' / 'multi_det_person.pth'),
               pose_cfg=pose_files[0], pose_pth=pose_files[1], img=img, bboxes=BBOXES,
               threads=torch.get_num_threads(), work_dir=str(tmp / 'mmdet_test'),
               mmdet_test=osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py'))
    two, two_cfg, two_ckpt = _multi_head_two_stage(tmp)
    two_files = export_head(two_cfg, two_ckpt, 'animal', str(tmp / 'out'))
    out.update(two_cfg=two_files[0], two_pth=two_files[1], dets=dict(
        dense=(out['det_cfg'], out['det_pth'], _expected_det(det, out['det_cfg'], img)),
        two_stage=(*two_files, _expected_det(two, two_files[0], img, head='animal'))),
        pose=_expected_pose(pose, out['pose_cfg'], out['pose_pth'], img))
    torch.save(out, str(tmp / 'expected.pt'))
    return dict(out, tmp=tmp, det_model=det, det_ckpt=det_ckpt, det_multi_cfg=det_cfg)


def _assert_stock_text(path):
    text = open(path).read()
    for word in ('custom_imports', 'mtl_plugin', 'GroupWeighted', 'group_id_weight',
                 'MultiSource', 'GroupedMetric', 'HeadIsolationHook', 'group_name', 'heads'):
        assert word not in text, word


@pytest.mark.slow
def test_export_detector_head_is_a_stock_retinanet(exported):
    _assert_stock_text(exported['det_cfg'])
    cfg = Config.fromfile(exported['det_cfg'])
    assert cfg.model.type == 'RetinaNet' and cfg.model.bbox_head.num_classes == 1
    assert cfg.model.bbox_head.loss_cls == dict(type='mmdet.FocalLoss', use_sigmoid=True,
                                                gamma=2.0, alpha=0.25)
    assert cfg.model.test_cfg == TEST_CFG and cfg.test_dataloader.dataset.type == 'CocoDataset'
    assert cfg.test_dataloader.dataset.metainfo.classes == ['person']
    assert cfg.test_evaluator.type == 'CocoMetric' and 'person_val' in cfg.test_evaluator.ann_file
    ckpt = torch.load(exported['det_pth'], weights_only=True)  # stock safe loading
    assert ckpt['meta']['dataset_meta']['classes'] == ['person']
    multi = exported['det_model'].state_dict()
    want = {k.replace('heads.person.', 'bbox_head.'): v for k, v in multi.items()
            if k.startswith(('backbone.', 'neck.', 'heads.person.'))}
    assert sorted(ckpt['state_dict']) == sorted(want)  # no _extra_state, no animal head
    assert _same(ckpt['state_dict'], want) == []


@pytest.mark.slow
def test_export_pose_head_is_a_stock_topdown_estimator(exported):
    _assert_stock_text(exported['pose_cfg'])
    cfg = Config.fromfile(exported['pose_cfg'])
    assert cfg.model.type == 'TopdownPoseEstimator' and cfg.model.head.out_channels == 17
    assert cfg.model.head.loss == dict(type='mmpose.KeypointMSELoss', use_target_weight=True)
    assert cfg.model.test_cfg == dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True)
    # the plugin's visualizer as its stock parent; MMPoseInferencer's keys of the source
    assert cfg.visualizer.type == 'mmpose.PoseLocalVisualizer'
    assert (cfg.data_mode, cfg.dataset_type) == ('topdown', 'CocoDataset')
    assert cfg.test_pipeline == cfg.test_dataloader.dataset.pipeline
    ckpt = torch.load(exported['pose_pth'], weights_only=True)
    meta = ckpt['meta']['dataset_meta']
    assert meta['dataset_name'] == 'coco' and meta['num_keypoints'] == 17
    assert meta['flip_indices'] == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert {k.split('.')[0] for k in ckpt['state_dict']} == {'backbone', 'head'}


@pytest.mark.slow
def test_exported_heads_predict_bit_identical_without_the_plugin(exported):
    proc = run_tool([PYTHON, '-c', STOCK_SCRIPT, str(exported['tmp'] / 'expected.pt')],
                    cwd=str(exported['tmp']))
    line = [x for x in proc.stdout.splitlines() if x.startswith('RESULT ')][-1]
    log = proc.stdout + proc.stderr  # mmdet's test.py: COCO bbox metric of the person set
    assert 'Epoch(test) [1/1]    coco/bbox_mAP: ' in log  # 8 images, batch 8
    assert json.loads(line[len('RESULT '):]) == dict(
        dets=dict(dense=dict(equal=[True] * 3, boxes=20, classes=['person'], type='RetinaNet'),
                  two_stage=dict(equal=[True] * 3, boxes=20, classes=['cat', 'bird'],
                                 type='FasterRCNN')),
        pose=[True, True, True, True], pose_dataset='coco', pose_type='TopdownPoseEstimator',
        plugin_modules=[])


@pytest.mark.slow
def test_export_names_an_unknown_head_and_plugin_modules(exported):
    with pytest.raises(KeyError, match=r"head='dog' is not a head of the model; heads: "
                       r"\['animal', 'person'\]"):  # (the dumped config sorts them)
        export_head(exported['det_multi_cfg'], exported['det_ckpt'], 'dog',
                    str(exported['tmp'] / 'refused'))


def test_stock_module_cfg_turns_group_losses_into_stock_ones():
    import mtl_plugin.models.losses.pose_losses  # noqa: F401  (registers the pose losses)
    init_default_scope('mmdet')
    focal = dict(type='mmdet.FocalLoss', use_sigmoid=True)
    assert stock_module_cfg(dict(type='RetinaHead', loss_cls=dict(
        type='GroupWeightedLoss', loss=focal, group_id_weight={1: 2.0})), 'h') == dict(
            type='RetinaHead', loss_cls=focal)
    assert stock_module_cfg(dict(type='GroupWeightedFocalHeatmapLoss', alpha=2.0, eps=1e-6,
                                 group_id_weight={'animal': 3.0}, normalize=False), 'h.loss') \
        == dict(type='mmpose.FocalHeatmapLoss', alpha=2.0)
    with pytest.raises(PluginTypeError, match=r"h\.aux: type 'DatasetClsHead' is the "
                       "plugin's; only its losses have stock equivalents"):
        stock_module_cfg(dict(type='X', aux=dict(type='DatasetClsHead')), 'h')


def _two_stage_model_cfg():
    """The tiny detector with a shared RPN and one RoI head per dataset."""
    def roi(n):
        return dict(type='StandardRoIHead', bbox_roi_extractor=dict(
            type='SingleRoIExtractor', out_channels=16, featmap_strides=[8, 16],
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)),
            bbox_head=dict(type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32,
                           roi_feat_size=7, num_classes=n, loss_cls=dict(
                               type='CrossEntropyLoss'), loss_bbox=dict(type='L1Loss'),
                           bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                           target_stds=[0.1, 0.1, 0.2, 0.2])))
    rpn_test = dict(nms_pre=200, max_per_img=50, nms=dict(type='nms', iou_threshold=0.7),
                    min_bbox_size=0)
    return dict(
        type='MultiHeadDetector', **backbone_neck(), heads=dict(person=roi(1), animal=roi(2)),
        rpn_head=dict(type='RPNHead', in_channels=16, feat_channels=16, anchor_generator=dict(
            type='AnchorGenerator', scales=[4], ratios=[1.0], strides=[8, 16]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder'), loss_bbox=dict(type='L1Loss'),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True)),
        test_cfg=dict(rpn=rpn_test, default=dict(score_thr=0.0, max_per_img=20,
                                                 nms=dict(type='nms', iou_threshold=0.5))))


def _multi_head_two_stage(tmp):
    path = write_tiny_config(str(tmp / 'no_data'), str(tmp / 'two_stage.py'))
    cfg = Config.fromfile(path)
    cfg.model = _two_stage_model_cfg()
    cfg.dump(path)
    model = _built(cfg, 'mmdet', seed=4)
    model.adopt(label_space=dict(group_classes={g: list(c) for g, c in GROUP_CLASSES.items()}))
    torch.save(dict(state_dict=model.state_dict()), str(tmp / 'two_stage.pth'))
    return model, path, str(tmp / 'two_stage.pth')


@pytest.mark.slow
def test_export_two_stage_head_as_faster_rcnn(exported):
    """(Its predictions: test_exported_heads_predict_bit_identical_without_the_plugin.)"""
    _assert_stock_text(exported['two_cfg'])
    cfg = Config.fromfile(exported['two_cfg'])
    assert (cfg.model.type, cfg.model.roi_head.bbox_head.num_classes) == ('FasterRCNN', 2)
    assert cfg.model.test_cfg.rcnn == dict(score_thr=0.0, max_per_img=20,
                                           nms=dict(type='nms', iou_threshold=0.5))
    assert cfg.model.rpn_head.num_classes == 1 and cfg.model.test_cfg.rpn.max_per_img == 50
    ckpt = torch.load(exported['two_pth'], weights_only=True)
    assert ckpt['meta']['dataset_meta'] == dict(classes=['cat', 'bird'])
    assert {k.split('.')[0] for k in ckpt['state_dict']} == {'backbone', 'neck', 'rpn_head',
                                                            'roi_head'}


def test_stock_module_cfg_refuses_a_plugin_loss_without_stock_parent(monkeypatch):
    class MyGroupLoss(torch.nn.Module):  # a loss of the plugin's own, on nn.Module only
        __module__ = 'mtl_plugin.models.losses.mine'

    monkeypatch.setitem(MODELS._module_dict, 'MyGroupLoss', MyGroupLoss)
    with pytest.raises(PluginTypeError, match=r"model\.heads\.person\.loss_cls: MyGroupLoss is "
                       "the plugin's and has no stock parent class"):
        stock_module_cfg(dict(type='RetinaHead', loss_cls=dict(type='MyGroupLoss')),
                         'model.heads.person')


@pytest.mark.parametrize('partition', [dict(), dict(shared_convs=1)])
def test_export_a_partitioned_head_carries_the_shared_towers(tmp_path, synthetic_root,
                                                             partition):
    """A head of a partitioned model (issue 14) has stand-ins for the first head's towers:
    its export copies them in (with ``shared_convs``, only the shared convs: the head's own
    later convs stay its own), and the stock RetinaNet predicts as the head does."""
    from mmdet.apis import inference_detector, init_detector
    path = write_tiny_config(synthetic_root, str(tmp_path / 'part.py'))
    cfg = Config.fromfile(path)
    cfg.model.partition_heads = partition
    for head in cfg.model.heads.values():  # two convs per tower: one shared, one own
        head.stacked_convs = 2
    cfg.dump(path)
    model = _built(cfg, 'mmdet', seed=4)
    model.adopt(groups=dict(person=0, animal=1), label_space=dict(
        group_classes={g: list(c) for g, c in GROUP_CLASSES.items()}))
    ckpt = str(tmp_path / 'part.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=META)), ckpt)
    assert model.partition.owner_name == 'animal'  # sorted first, whatever the dump order
    assert not any(k.startswith('heads.person.cls_convs.0') for k in model.state_dict())
    cfg_out, pth_out = export_head(path, ckpt, 'person', str(tmp_path / 'out'))
    state = torch.load(pth_out, weights_only=True)['state_dict']
    theirs = model.state_dict()
    n = len(model.heads['animal'].cls_convs)
    for k in range(n):
        src = 'animal' if k < partition.get('shared_convs', n) else 'person'
        for tower in ('cls_convs', 'reg_convs'):
            assert torch.equal(state[f'bbox_head.{tower}.{k}.conv.weight'],
                               theirs[f'heads.{src}.{tower}.{k}.conv.weight']), (tower, k)
    img = str(tmp_path / 'image.png')
    mmcv.imwrite(np.random.default_rng(1).integers(0, 255, (128, 128, 3), dtype=np.uint8), img)
    expected = _expected_det(model, cfg_out, img, head='person')
    stock = init_detector(cfg_out, pth_out, device='cpu')
    assert type(stock).__name__ == 'RetinaNet'
    got = inference_detector(stock, img).pred_instances
    for key in ('bboxes', 'scores', 'labels'):
        assert torch.equal(got[key], expected[key]), key
