"""GroupAwareModel: stock mmdet / mmpose models get the group context around loss()."""
import copy

import pytest
import torch
from mmengine.registry import MODELS, DefaultScope, init_default_scope
from mmengine.structures import InstanceData, PixelData
from mmpose.structures import PoseDataSample
from tiny_models import TEST_CFG, TRAIN_CFG, backbone_neck, batch, retina

from mtl_plugin.groups import Groups, UnknownGroupError
from mtl_plugin.models.losses import has_group_context

GROUPS = Groups(['person', 'animal'], [0, 1])


def _with_groups(data):
    for s in data['data_samples']:
        s.set_metainfo(dict(groups=GROUPS.to_dict()))
    return data


def retinanet(weights, wrap=True):
    init_default_scope('mmdet')
    head = retina(2)
    head['loss_cls'] = dict(type='GroupWeightedLoss', use_sigmoid=True, group_id_weight=weights,
                            loss=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                                      alpha=0.25))
    head['loss_bbox'] = dict(type='GroupWeightedLoss', group_id_weight=weights,
                             loss=dict(type='L1Loss'))
    stock = dict(type='RetinaNet', **backbone_neck(), bbox_head=head, train_cfg=TRAIN_CFG,
                 test_cfg=TEST_CFG)
    torch.manual_seed(0)
    return MODELS.build(dict(type='GroupAwareModel', model=stock) if wrap else stock)


def det_losses(model, data):
    data = model.data_preprocessor(copy.deepcopy(data), training=True)
    losses = model(**data, mode='loss')
    return sum(sum(v) if isinstance(v, list) else v for k, v in losses.items()
               if 'loss' in k).item()


def test_retinanet_keys_and_weights():
    data = _with_groups(batch(['person', 'animal'], seed=1))
    stock = retinanet({}, wrap=False)
    model = retinanet({'1': 2.0})
    assert type(model) is type(stock)  # no wrapper module: same class, same keys
    assert list(model.state_dict()) == list(stock.state_dict())
    assert type(model.data_preprocessor) is type(stock.data_preprocessor)
    values = {str(w): det_losses(retinanet(w), data) for w in ({'1': 2.0}, {1: 2.0}, {})}
    assert values["{'1': 2.0}"] == values['{1: 2.0}'] != values['{}']
    assert values['{}'] == pytest.approx(det_losses(stock, data), rel=1e-6)
    assert not has_group_context()
    with pytest.raises(UnknownGroupError, match="unknown group 'animl'.*known groups: "
                                                "'person'=0, 'animal'=1"):
        det_losses(retinanet({'animl': 2.0}), data)
    assert not has_group_context()


def topdown(weights):
    with DefaultScope.overwrite_default_scope('mmpose'):
        torch.manual_seed(0)
        return MODELS.build(dict(
            type='GroupAwareModel', model_type='TopdownPoseEstimator',
            backbone=dict(type='ResNet', depth=18),
            head=dict(type='HeatmapHead', in_channels=512, out_channels=3,
                      deconv_out_channels=None,
                      loss=dict(type='GroupWeightedKeypointMSELoss', use_target_weight=True,
                                group_id_weight=weights)),
            test_cfg=dict(flip_test=False)))


def test_topdown_pose_estimator_loss_inputs_data_samples():
    torch.manual_seed(1)
    inputs = torch.rand(2, 3, 64, 64)
    samples = []
    for gid, name in ((0, 'person'), (1, 'animal')):
        s = PoseDataSample(metainfo=dict(group_id=gid, group_name=name,
                                         groups=GROUPS.to_dict()))
        s.gt_fields = PixelData(heatmaps=torch.rand(3, 2, 2))
        s.gt_instance_labels = InstanceData(keypoint_weights=torch.ones(1, 3))
        samples.append(s)
    values = {}
    for key, w in (('str', {'1': 2.0}), ('int', {1: 2.0}), ('none', {})):
        model = topdown(w)
        model.train()
        values[key] = model.loss(inputs, samples)['loss_kpt'].item()
    assert values['str'] == values['int'] != values['none']
    with pytest.raises(UnknownGroupError, match="unknown group 'animl'"):
        topdown({'animl': 2.0}).loss(inputs, samples)
    assert not has_group_context()
    with pytest.raises(TypeError, match='model_type'):
        MODELS.build(dict(type='GroupAwareModel'))
