# Scheme 7, auxiliary group task: one keypoint head for both groups, plus a group
# classification head on the pooled backbone features ("person or animal?"), weight 0.004
# for the first epoch and 0.0015 afterwards (benchmarks/group_boost_pose.py: first quarter).
# The weights are the detection schedule's 0.4 -> 0.15 scaled by 1/100, to the size of the
# heatmap MSE loss (~1e-3 against a cross-entropy of ~0.7): at 0.4 the auxiliary gradient
# fills Adam's second moments and the keypoint task barely trains (pose AP 80 -> 50 in
# benchmarks/results/group_boost_pose.json before the change, docs/benchmark_seeds.md).
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
model = dict(
    _delete_=True,
    type='MultiHeadPoseEstimator',
    data_preprocessor={{_base_.model.data_preprocessor}},
    backbone={{_base_.model.backbone}},
    heads=dict(pose={{_base_.model.head}}),
    group_to_head=dict(person='pose', animal='pose'),  # one head, both groups
    aux_head=dict(type='DatasetClsHead', in_channels=128, num_groups=2, loss_weight=0.004),
    test_cfg={{_base_.model.test_cfg}})
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.aux_head.loss_weight', milestones=[1], values=[0.004, 0.0015])])
]
