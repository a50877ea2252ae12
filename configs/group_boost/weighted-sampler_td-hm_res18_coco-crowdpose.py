# Scheme 2, weighted sampling: each CrowdPose sample is drawn twice as often.
_base_ = [
    '../_base_/models/td-hm_res18.py', '../_base_/datasets/coco_crowdpose_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
train_dataloader = dict(sampler=dict(_delete_=True, type='WeightedGroupSampler',
                                     group_weights={1: 2.0}))
