# Scheme 2, weighted sampling: each animal (group 1) sample is drawn twice as often.
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
train_dataloader = dict(sampler=dict(_delete_=True, type='WeightedGroupSampler',
                                     group_weights={1: 2.0}))
