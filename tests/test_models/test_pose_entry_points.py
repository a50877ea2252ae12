"""A multi-head pose checkpoint at mmpose's own doors: init_model, inference_topdown,
MMPoseInferencer, the visualizer; detector boxes routed by class to their dataset's head."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, MODELS, init_default_scope
from mmengine.runner import save_checkpoint
from mmengine.structures import InstanceData

from tiny_pose import write_tiny_pose_config

pytestmark = pytest.mark.real_data
COCO_IMG = 'coco/000000000785.jpg'
BOXES = np.array([[20., 30., 220., 400.], [100., 50., 300., 250.]])


@pytest.fixture(scope='module')
def tiny_pose(shared_real, tmp_path_factory):
    """A tiny COCO (17) + Animal-Pose (20) checkpoint saved by ``save_checkpoint`` with no
    meta: everything inference needs comes from the model's own state."""
    import mtl_plugin  # noqa: F401
    tmp = tmp_path_factory.mktemp('pose_entry')
    root = shared_real  # read only
    cfg_path = write_tiny_pose_config(root, str(tmp / 'tiny_pose.py'))
    cfg = Config.fromfile(cfg_path)
    init_default_scope('mmpose')
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.dataset_meta = dataset.metainfo
    ckpt = str(tmp / 'tiny_pose.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta={}), ckpt)
    return dict(cfg=cfg_path, ckpt=ckpt, root=root, dataset=dataset, tmp=tmp)


@pytest.fixture(scope='module')
def pose_model(tiny_pose):
    from mmpose.apis import init_model
    return init_model(tiny_pose['cfg'], tiny_pose['ckpt'], device='cpu')


def _same_meta(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_init_model_adopts_the_keypoint_metas_from_the_checkpoint(tiny_pose, pose_model):
    from mtl_plugin.models.pose.keypoint_meta import keypoint_meta
    groups = pose_model.dataset_meta['group_metainfo']
    for group in ('person', 'animal'):
        _same_meta(groups[group],
                   keypoint_meta(tiny_pose['dataset'].metainfo['group_metainfo'][group]))
    assert [groups[g]['num_keypoints'] for g in ('person', 'animal')] == [17, 20]
    assert groups['animal']['dataset_name'] == 'animalpose'
    assert pose_model.groups.to_dict() == dict(person=0, animal=1)


def test_inference_topdown_runs_every_head_on_a_box_without_a_head(tiny_pose, pose_model):
    from mmpose.apis import inference_topdown
    from mtl_plugin.apis import inference_topdown_routed
    img = osp.join(tiny_pose['root'], COCO_IMG)
    out = inference_topdown(pose_model, img, BOXES)
    assert len(out) == 2
    for sample in out:
        assert sample.pred_head == 'person' and sample.pred_group == 'person'
        assert sorted(sample.pred_heads) == ['animal', 'person']
        assert sample.pred_instances.keypoints.shape == (1, 17, 2)
        assert sample.pred_instances_animal.keypoints.shape == (1, 20, 2)
        assert np.array_equal(sample.pred_instances.keypoints,
                              sample.pred_instances_person.keypoints)
    routed = inference_topdown_routed(pose_model, img, BOXES, groups=['animal', 'person'])
    assert [s.pred_head for s in routed] == ['animal', 'person']
    assert 'pred_instances_person' not in routed[0]
    # the same head on the same box: the same keypoints, to the last bit
    assert np.array_equal(routed[0].pred_instances.keypoints,
                          out[0].pred_instances_animal.keypoints)
    assert np.array_equal(routed[1].pred_instances.keypoints, out[1].pred_instances.keypoints)


def test_each_head_flips_with_its_own_dataset_indices(tiny_pose, pose_model, monkeypatch):
    from mtl_plugin.apis import inference_topdown_routed
    seen = {}
    for name, head in pose_model.heads.items():
        def spy(feats, samples, test_cfg=None, _orig=head.predict, _name=name):
            seen[_name] = list(samples[0].flip_indices)
            return _orig(feats, samples, test_cfg=test_cfg)
        monkeypatch.setattr(head, 'predict', spy)
    inference_topdown_routed(pose_model, osp.join(tiny_pose['root'], COCO_IMG), BOXES,
                             heads=['person', 'animal'])
    metas = tiny_pose['dataset'].metainfo['group_metainfo']
    assert seen == dict(person=metas['person']['flip_indices'],
                        animal=metas['animal']['flip_indices'])
    assert len(seen['animal']) == 20


def test_unknown_head_or_group_names_the_heads(tiny_pose, pose_model):
    from mtl_plugin.apis import inference_topdown_routed
    img = osp.join(tiny_pose['root'], COCO_IMG)
    with pytest.raises(KeyError, match=r"asks for head 'cat', but the model has heads "
                                       r"\['animal', 'person'\]"):
        inference_topdown_routed(pose_model, img, BOXES, heads='cat')
    with pytest.raises(KeyError, match=r"group_name 'zebra', which no head predicts; groups: "
                                       r"\['person', 'animal'\], heads: \['animal', 'person'\]"):
        inference_topdown_routed(pose_model, img, BOXES, groups='zebra')
    with pytest.raises(ValueError, match=r'groups must name one entry per box \(2\), but got 3'):
        inference_topdown_routed(pose_model, img, BOXES, groups=['person'] * 3)


def _record_styles(visualizer, monkeypatch):
    drawn = []
    orig = type(visualizer)._draw_instances_kpts

    def spy(self, image, instances, *args, **kwargs):
        drawn.append((len(self.kpt_color), len(self.skeleton), instances.keypoints.shape[1]))
        return orig(self, image, instances, *args, **kwargs)
    monkeypatch.setattr(type(visualizer), '_draw_instances_kpts', spy)
    return drawn


def test_mmpose_inferencer_runs_and_draws_the_default_head(tiny_pose, monkeypatch):
    from mmpose.apis import MMPoseInferencer
    inferencer = MMPoseInferencer(pose2d=tiny_pose['cfg'], pose2d_weights=tiny_pose['ckpt'],
                                  device='cpu')
    visualizer = inferencer.inferencer.visualizer
    assert type(visualizer).__name__ == 'GroupPoseLocalVisualizer'
    drawn = _record_styles(visualizer, monkeypatch)
    out_dir = str(tiny_pose['tmp'] / 'inferencer')
    # no detector (the config's dataset_type picks none): the whole image is the box
    result = next(inferencer(osp.join(tiny_pose['root'], COCO_IMG), vis_out_dir=out_dir))
    assert [len(p['keypoints']) for p in result['predictions'][0]] == [17]
    assert drawn == [(17, 19, 17)]  # COCO's 17 keypoint colours and 19 links
    assert osp.isfile(osp.join(out_dir, '000000000785.jpg'))


def test_visualizer_draws_each_group_with_its_own_keypoints(tiny_pose, pose_model, monkeypatch):
    """mmpose's own visualizer fails on the 20-keypoint group; ours uses each group's meta."""
    from mmpose.visualization import PoseLocalVisualizer
    from mtl_plugin.visualization import GroupPoseLocalVisualizer
    dataset = tiny_pose['dataset']
    data = pseudo_collate([dataset[0], dataset[len(dataset) - 1]])
    with torch.no_grad():
        out = pose_model.test_step(data)
    assert [s.group_name for s in out] == ['person', 'animal']
    image = np.zeros((480, 640, 3), np.uint8)
    stock = PoseLocalVisualizer(name='stock_vis')
    stock.set_dataset_meta(dataset.metainfo)
    with pytest.raises(ValueError, match=r'length of kpt_color \(17\) does not matches that of '
                                         r'keypoints \(20\)'):
        stock.add_datasample('x', image, out[1], draw_gt=False)
    ours = GroupPoseLocalVisualizer(name='group_vis')
    ours.set_dataset_meta(dataset.metainfo)
    drawn = _record_styles(ours, monkeypatch)
    for sample in out:
        ours.add_datasample('x', image, sample, draw_gt=False)
    assert drawn == [(17, 19, 17), (20, 20, 20)]  # Animal-Pose: 20 colours, 20 links
    assert len(ours.kpt_color) == 17  # the dataset meta's style is back after each sample
    # keypoints converted to another layout than their group's: the dataset meta's style
    converted = out[0].clone()
    converted.set_metainfo(dict(group_name='animal', pred_group=None))
    ours.add_datasample('x', image, converted, draw_gt=False)
    assert drawn[-1] == (17, 19, 17)


def _detections(labels, scores):
    det = DetDataSample()
    n = len(labels)
    det.pred_instances = InstanceData(
        bboxes=torch.tensor([[20. + 40 * i, 30., 220. + 40 * i, 400.] for i in range(n)]),
        labels=torch.tensor(labels), scores=torch.tensor(scores))
    return det


CLASSES = ('person', 'cat', 'dog', 'car')
CLASS_GROUPS = dict(person=['person'], cat=['animal'], dog=['animal'], car=['vehicle'])


def test_detector_boxes_are_routed_by_class(tiny_pose, pose_model, monkeypatch):
    from mtl_plugin.apis import det_pose_to_json, pose_from_detections, resolve_class_routes
    from mtl_plugin.visualization import GroupPoseLocalVisualizer
    routes = resolve_class_routes(CLASSES, CLASS_GROUPS, pose_model, dict(car=None))
    assert routes == dict(person=('group_name', 'person'), cat=('group_name', 'animal'),
                          dog=('group_name', 'animal'), car=None)
    det = _detections([0, 1, 3, 2, 0, 1], [0.9, 0.8, 0.9, 0.7, 0.2, 0.5])
    img = osp.join(tiny_pose['root'], COCO_IMG)
    out = pose_from_detections(pose_model, img, det, CLASSES, routes, score_thr=0.3)
    # the car is skipped, the person scored 0.2 dropped
    assert [s.pred_head for s in out] == ['person', 'animal', 'animal', 'animal']
    assert [s.pred_instances.keypoints.shape[1] for s in out] == [17, 20, 20, 20]
    assert [int(s.pred_instances.labels[0]) for s in out] == [0, 1, 2, 1]
    records = det_pose_to_json(out, CLASSES)
    assert [(r['class_name'], r['group'], len(r['keypoints'])) for r in records] == [
        ('person', 'person', 17), ('cat', 'animal', 20), ('dog', 'animal', 20),
        ('cat', 'animal', 20)]
    assert [r['bbox_score'] for r in records] == pytest.approx([0.9, 0.8, 0.7, 0.5])
    vis = GroupPoseLocalVisualizer(name='det_pose_vis')
    vis.set_dataset_meta(pose_model.dataset_meta)
    drawn, texts = _record_styles(vis, monkeypatch), []
    orig = type(vis).draw_texts
    monkeypatch.setattr(type(vis), 'draw_texts', lambda self, t, *a, **k: (
        texts.append(t), orig(self, t, *a, **k))[1])
    image = vis.draw_samples(np.zeros((480, 640, 3), np.uint8), out, classes=CLASSES,
                             kpt_thr=-1)
    assert image.shape == (480, 640, 3) and image.any()
    assert drawn == [(17, 19, 17), (20, 20, 20), (20, 20, 20), (20, 20, 20)]
    assert texts == ['person', 'cat', 'dog', 'cat']


def test_class_routes_fail_clearly(pose_model):
    from mtl_plugin.apis import resolve_class_routes
    with pytest.raises(ValueError, match=r"detector classes \['car'\] route to no pose group "
                                         r"\(pose groups: \['person', 'animal'\]"):
        resolve_class_routes(CLASSES, CLASS_GROUPS, pose_model)
    with pytest.raises(ValueError, match=r"class_to_group names classes \['horse'\] that the "
                                         r"detector does not predict; its classes: \['person'"):
        resolve_class_routes(CLASSES, CLASS_GROUPS, pose_model, dict(horse='animal'))
    with pytest.raises(ValueError, match=r"class_to_group routes \{'car': 'truck'\} to no pose "
                                         r"head; pose groups: \['person', 'animal'\], heads: "):
        resolve_class_routes(CLASSES, CLASS_GROUPS, pose_model, dict(car='truck'))
    # an explicit route wins over the groups of the detector
    assert resolve_class_routes(CLASSES, CLASS_GROUPS, pose_model, dict(
        car=None, dog='person'))['dog'] == ('group_name', 'person')


def test_inference_det_pose_routes_a_multi_head_detector_by_its_label_space(
        tiny_pose, pose_model):
    """mmdet's init_detector + inference_detector on a tiny multi-head checkpoint (person |
    cat, bird); every box is routed by its predicted class through the detector's groups."""
    from mmdet.apis import init_detector
    from tiny_models import META, build_detector, write_tiny_config
    from mtl_plugin.apis import inference_det_pose
    tmp = tiny_pose['tmp']
    det_cfg = write_tiny_config(str(tmp / 'no_det_data'), str(tmp / 'tiny_det.py'))
    det_model = build_detector()
    det_model.dataset_meta = META
    save_checkpoint(dict(state_dict=det_model.state_dict(), meta=dict(dataset_meta=META)),
                    str(tmp / 'tiny_det.pth'))
    det_model = init_detector(det_cfg, str(tmp / 'tiny_det.pth'), device='cpu')
    out, classes = inference_det_pose(det_model, pose_model,
                                      osp.join(tiny_pose['root'], COCO_IMG), score_thr=0.0)
    assert classes == ('person', 'cat', 'bird')
    routed = [(classes[int(s.pred_instances.labels[0])], s.group_name, s.pred_head,
               s.pred_instances.keypoints.shape[1]) for s in out]
    expected = {'person': ('person', 'person', 17), 'cat': ('animal', 'animal', 20),
                'bird': ('animal', 'animal', 20)}
    assert routed and all(r[1:] == expected[r[0]] for r in routed)
    assert {'person', 'cat'} <= {r[0] for r in routed}  # both heads were used


def test_demo_det_pose_writes_the_routed_keypoints(tiny_pose):
    """tools/demo_det_pose.py on the real samples (oracle boxes, the tiny checkpoint)."""
    import importlib.util
    import json
    import mmcv
    from conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'demo_det_pose', osp.join(REPO, 'tools', 'demo_det_pose.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    out = str(tiny_pose['tmp'] / 'demo')
    demo.main(['--out-dir', out, '--pose-config', tiny_pose['cfg'], '--pose-checkpoint',
               tiny_pose['ckpt'], '--data-root', tiny_pose['root'], '--kpt-thr', '0'])
    with open(osp.join(out, 'det_pose.json')) as f:
        report = json.load(f)
    routed = {img: [(b['class_name'], b['head'], len(b['keypoints'])) for b in boxes]
              for img, boxes in report['images'].items()}
    assert routed == {'000000196141.jpg': [('person', 'person', 17)] * 5,
                      '000000000004.jpg': [('antelope', 'animal', 20)],
                      'ho105.jpeg': [('cat', 'animal', 20)]}
    drawn = mmcv.imread(osp.join(out, 'ho105.png'))
    assert drawn.shape == mmcv.imread(osp.join(tiny_pose['root'], 'animalpose',
                                               'ho105.jpeg')).shape


def test_flip_test_without_keypoint_metas_names_the_fix(tiny_pose):
    """Random weights, no checkpoint: mmpose's COCO default flips the 17-keypoint head;
    the 20-keypoint head has no flip_indices and says how to give them."""
    from mmpose.apis import init_model
    from mtl_plugin.apis import inference_topdown_routed
    model = init_model(tiny_pose['cfg'], None, device='cpu')
    img = osp.join(tiny_pose['root'], COCO_IMG)
    assert inference_topdown_routed(model, img, BOXES, heads='person')[0].pred_instances[
        'keypoints'].shape == (1, 17, 2)
    with pytest.raises(ValueError, match=r'flip test of head "animal" needs its keypoints\' '
                                         r'flip_indices.*set model.dataset_meta'):
        inference_topdown_routed(model, img, BOXES, heads='animal')
    # a model that met no groups: detector groups route to the pose heads of their names
    from mtl_plugin.apis import resolve_class_routes
    assert resolve_class_routes(CLASSES, CLASS_GROUPS, model, dict(car=None)) == dict(
        person=('head', 'person'), cat=('head', 'animal'), dog=('head', 'animal'), car=None)
