# Scheme 7, auxiliary group task for detection: one RetinaNet head over the union label space
# (masked: a source's unannotated classes get no gradient) plus a dataset-classification head
# on the pooled top FPN level; weight 0.4 for the first epoch, 0.15 afterwards.
_base_ = ['../demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py']
model = dict(
    heads=dict(_delete_=True, union=dict(
        type='RetinaHead', num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25),
        loss_bbox=dict(type='L1Loss'))),
    group_to_head=dict(person='union', animal='union'),
    aux_head=dict(type='DatasetClsHead', in_channels=64, num_groups=2, loss_weight=0.4))
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.aux_head.loss_weight', milestones=[1], values=[0.4, 0.15])])
]
