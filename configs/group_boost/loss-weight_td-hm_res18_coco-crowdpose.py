# Scheme 1, loss weighting: CrowdPose (group 1) samples count twice in the heatmap loss
# (normalised by the batch's mean weight, so the loss scale stays the same).
_base_ = ['../_base_/group_boost_pose.py']
model = dict(type='GroupAwareModel', model_type='TopdownPoseEstimator',
             head=dict(loss=dict(type='GroupWeightedKeypointMSELoss', use_target_weight=True,
                                 group_id_weight={1: 2.0})))
