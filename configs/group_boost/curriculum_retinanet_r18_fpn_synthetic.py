# Scheme 5, curriculum: the animal loss weights of loss-weight_* (GroupWeightedLoss), ramped
# 1.0 -> 1.5 -> 2.0 at epochs 1 and 2 (the seed's recipe uses epochs 50 and 100).
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
model = dict(type='GroupAwareModel', model_type='RetinaNet', bbox_head=dict(
    loss_cls=dict(_delete_=True, type='GroupWeightedLoss', use_sigmoid=True,
                  group_id_weight={1: 1.0},
                  loss=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25)),
    loss_bbox=dict(_delete_=True, type='GroupWeightedLoss', group_id_weight={1: 1.0},
                   loss=dict(type='L1Loss'))))
custom_hooks = [
    dict(type='CurriculumLearningHook', schedules=[
        dict(param=f'model.bbox_head.{loss}.group_id_weight.1', milestones=[1, 2],
             values=[1.0, 1.5, 2.0]) for loss in ('loss_cls', 'loss_bbox')]),
]
