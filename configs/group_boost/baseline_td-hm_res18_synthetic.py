# Baseline of the pose group_boost study on generated data (benchmarks/group_boost_pose.py):
# one top-down heatmap model for person (group 0) and animal (group 1) objects, the
# generator's 4 keypoints, no group-specific treatment.
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
