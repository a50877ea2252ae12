# Scheme 5, curriculum: CrowdPose's loss weight (GroupWeightedKeypointMSELoss, as in
# loss-weight_*) 1.0 before epoch 50, 1.5 before 100, 2.0 after (the seed's example;
# shortened to epochs 1 and 2 here so that a short run shows the change).
_base_ = [
    '../_base_/models/td-hm_res18.py', '../_base_/datasets/coco_crowdpose_pose.py',
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
