# Scheme 5, curriculum: the animal group's loss weight (GroupWeightedKeypointMSELoss, as in
# loss-weight_*) 1.0 -> 1.5 -> 2.0 at epochs 1 and 2 (benchmarks/group_boost_pose.py moves
# the milestones to 1/3 and 2/3 of its iteration budget).
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
model = dict(type='GroupAwareModel', model_type='TopdownPoseEstimator',
             head=dict(loss=dict(type='GroupWeightedKeypointMSELoss', use_target_weight=True,
                                 group_id_weight={1: 1.0})))
train_cfg = dict(max_epochs=3, val_interval=3)
custom_hooks = [
    dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.head.loss_module.group_id_weight.1', milestones=[1, 2],
        values=[1.0, 1.5, 2.0])]),
]
