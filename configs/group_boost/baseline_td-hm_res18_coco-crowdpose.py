# Baseline of the group_boost study: no group-specific treatment.
_base_ = [
    '../_base_/models/td-hm_res18.py', '../_base_/datasets/coco_crowdpose_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
