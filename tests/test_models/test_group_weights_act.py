"""Group weights have one meaning in every model type: a sample of weight w counts w times
a weight-1 sample, within a batch and across batches (issue 12: with the batch's own mean as
the reference, a single-group batch, i.e. every head of a multi-head model and every batch of
GroupBatchSampler, was unweighted). Normalised weights divide by the dataset's mean weight."""
import copy

import pytest
import torch
from mmengine.structures import InstanceData, PixelData
from mmpose.structures import PoseDataSample
from test_group_aware import det_losses, retinanet, topdown
from tiny_models import GROUP_CLASSES, batch, build_detector, retina

SIZES = dict(person=3, animal=1)  # the dataset: 3 person samples to 1 animal sample
DATASET = dict(groups=dict(person=0, animal=1), group_sizes=SIZES)


def ref(weights):
    """The dataset's mean weight, what normalised weights divide by."""
    return sum(n * weights.get(g, 1.0) for g, n in SIZES.items()) / sum(SIZES.values())


def _with_dataset(data):
    for s in data['data_samples']:
        s.set_metainfo(DATASET)
    return data


def test_a_single_group_batch_is_weighted_in_a_stock_model():
    data = _with_dataset(batch(['animal', 'animal'], seed=3))
    plain = det_losses(retinanet({}), data)
    for w in (2.0, 100.0):
        expected = w / ref(dict(animal=w)) * plain
        assert det_losses(retinanet({'animal': w}), data) == pytest.approx(expected, rel=1e-5)
        raw = retinanet({'animal': w})
        for loss in (raw.bbox_head.loss_cls, raw.bbox_head.loss_bbox):
            loss.normalize = False
        assert det_losses(raw, data) == pytest.approx(w * plain, rel=1e-5)
    # the weight-1 group of the same dataset weighs 1 / ref
    person = _with_dataset(batch(['person', 'person'], seed=3))
    assert det_losses(retinanet({'animal': 2.0}), person) == pytest.approx(
        det_losses(retinanet({}), person) / ref(dict(animal=2.0)), rel=1e-5)


def _head_losses(model, data):
    data = model.data_preprocessor(copy.deepcopy(data), training=True)
    losses = model(**data, mode='loss')
    out = {}
    for key, value in losses.items():
        head = key.split('.')[0]
        if 'loss' in key:
            out[head] = out.get(head, 0.0) + (sum(value) if isinstance(value, list) else value)
    return {h: v.item() for h, v in out.items()}


def _weighted_person_head(weights):
    head = retina(1)
    head['loss_cls'] = dict(type='GroupWeightedLoss', use_sigmoid=True, group_id_weight=weights,
                            loss=head['loss_cls'])
    head['loss_bbox'] = dict(type='GroupWeightedLoss', group_id_weight=weights,
                             loss=head['loss_bbox'])
    return build_detector(heads=dict(person=head, animal=retina(2)), head_classes=GROUP_CLASSES)


def test_each_head_of_a_multi_head_detector_is_weighted():
    data = _with_dataset(batch(['person', 'animal', 'person'], seed=4))
    plain = _head_losses(build_detector(head_classes=GROUP_CLASSES), data)
    for w in (2.0, 100.0):
        got = _head_losses(_weighted_person_head({'person': w}), data)
        # the person head sees person samples only, and its weight still acts
        assert got['person'] == pytest.approx(w / ref(dict(person=w)) * plain['person'],
                                              rel=1e-5)
        assert got['animal'] == plain['animal']


def test_a_single_group_batch_is_weighted_in_a_pose_model():
    torch.manual_seed(1)
    inputs = torch.rand(2, 3, 64, 64)
    samples = []
    for _ in range(2):
        s = PoseDataSample(metainfo=dict(group_id=1, group_name='animal', **DATASET))
        s.gt_fields = PixelData(heatmaps=torch.rand(3, 2, 2))
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, 3))
        samples.append(s)
    values = {}
    for w in (None, 2.0, 100.0):
        model = topdown({} if w is None else {'animal': w})
        model.train()
        values[w] = model.loss(inputs, samples)['loss_kpt'].item()
    for w in (2.0, 100.0):
        assert values[w] == pytest.approx(w / ref(dict(animal=w)) * values[None], rel=1e-5)


def _wrap(loss):
    return dict(type='GroupWeightedLoss', group_id_weight={'animal': 2.0}, loss=loss,
                **({'use_sigmoid': True} if loss.get('use_sigmoid') else {}))


FOCAL = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25)
FCOS = dict(type='FCOSHead', num_classes=2, in_channels=16, feat_channels=32, stacked_convs=1,
            strides=[8, 16], loss_cls=_wrap(FOCAL))
ATSS_BOX = dict(type='ATSSHead', num_classes=2, in_channels=16, feat_channels=32,
                stacked_convs=1, anchor_generator=dict(
                    type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                    scales_per_octave=1, strides=[8, 16]),
                loss_bbox=_wrap(dict(type='GIoULoss', loss_weight=2.0)))


@pytest.mark.parametrize('head, where', [(FCOS, 'FCOSHead.*loss_cls'),
                                         (ATSS_BOX, 'ATSSHead.*loss_bbox')])
def test_a_group_weighted_loss_on_rows_that_are_not_image_major_is_refused(head, where):
    """Issue 12: on FCOS-style heads the weights landed on the wrong rows, silently."""
    from mmengine.registry import MODELS
    stock = dict(type='RetinaNet', **backbone_neck_cfg(), bbox_head=dict(head),
                 train_cfg=None, test_cfg=None)
    with pytest.raises(TypeError, match=f'{where}.*image-major rows.*AnchorHead'):
        MODELS.build(dict(type='GroupAwareModel', model=stock))
    with pytest.raises(TypeError, match=f'MultiHeadDetector: animal.*{where}'):
        build_detector(heads=dict(person=retina(1), animal=dict(head)))
    # the classification loss of ATSS is image-major: accepted
    atss = dict(ATSS_BOX, loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                loss_cls=_wrap(FOCAL))
    assert build_detector(heads=dict(person=retina(1), animal=atss)) is not None


def backbone_neck_cfg():
    from tiny_models import backbone_neck
    return backbone_neck()
