# Scheme 1, loss weighting: animal (group 1) samples count twice in the heatmap loss
# (normalised by the batch's mean weight, so the loss scale stays the same).
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
model = dict(type='GroupAwareModel', model_type='TopdownPoseEstimator',
             head=dict(loss=dict(type='GroupWeightedKeypointMSELoss', use_target_weight=True,
                                 group_id_weight={1: 2.0})))
