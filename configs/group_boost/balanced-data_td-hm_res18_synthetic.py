# Scheme 6, data balancing: the animal group over-sampled 2.5x (fractional repeat factors,
# seeded).
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
train_dataloader = dict(dataset=dict(_delete_=True, type='GroupBalancedDataset',
                                     oversample={1: 2.5}, seed=0,
                                     dataset={{_base_.train_dataloader.dataset}}))
