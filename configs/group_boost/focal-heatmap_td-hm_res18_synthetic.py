# Scheme 4, focal loss: CornerNet/CenterNet focal heatmap loss (alpha=2, beta=4), which
# focuses on hard keypoints, on a head whose heatmaps are probabilities
# (SigmoidHeatmapHead); animal (group 1) samples also weighted 2x.
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
model = dict(type='GroupAwareModel', model_type='TopdownPoseEstimator',
             head=dict(type='SigmoidHeatmapHead',
                       loss=dict(_delete_=True, type='GroupWeightedFocalHeatmapLoss',
                                 alpha=2.0, beta=4.0, use_target_weight=True,
                                 group_id_weight={1: 2.0})))
