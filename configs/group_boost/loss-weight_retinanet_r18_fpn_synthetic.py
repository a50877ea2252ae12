# Scheme 1, loss weighting: animal (group 1) images weigh 2x in both RetinaNet losses;
# GroupWeightedLoss spreads each image's weight over its anchors.
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
model = dict(type='GroupAwareModel', model_type='RetinaNet', bbox_head=dict(
    loss_cls=dict(_delete_=True, type='GroupWeightedLoss', use_sigmoid=True,
                  group_id_weight={1: 2.0},
                  loss=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25)),
    loss_bbox=dict(_delete_=True, type='GroupWeightedLoss', group_id_weight={1: 2.0},
                   loss=dict(type='L1Loss'))))
