# Scheme 7, auxiliary group task: the same single keypoint head for both datasets, plus a
# dataset-classification head on the pooled backbone features ("which dataset is this?"),
# weight 0.004 for the first epoch and 0.0015 afterwards: the seed's 0.3-0.5 early, 0.1-0.2
# late, scaled by 1/100 to the heatmap MSE loss (~1e-3; see the synthetic variant).
_base_ = [
    '../_base_/models/td-hm_res18.py', '../_base_/datasets/coco_crowdpose_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
model = dict(
    _delete_=True,
    type='MultiHeadPoseEstimator',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    heads=dict(pose={{_base_.model.head}}),
    group_to_head=dict(coco='pose', crowdpose='pose'),  # one head, both datasets
    aux_head=dict(type='DatasetClsHead', in_channels=512, num_groups=2, loss_weight=0.004),
    test_cfg={{_base_.model.test_cfg}})
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.aux_head.loss_weight', milestones=[1], values=[0.004, 0.0015])])
]
