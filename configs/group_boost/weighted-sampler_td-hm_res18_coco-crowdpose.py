# Scheme 2, weighted sampling: each CrowdPose sample is drawn twice as often.
_base_ = ['../_base_/group_boost_pose.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='WeightedGroupSampler',
                                     group_weights={1: 2.0}))
