# Scheme 6, data balancing: CrowdPose over-sampled 2.5x (fractional repeat factors, seeded).
_base_ = [
    '../_base_/models/td-hm_res18.py', '../_base_/datasets/coco_crowdpose_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
train_dataloader = dict(dataset=dict(_delete_=True, type='GroupBalancedDataset',
                                     oversample={1: 2.5}, seed=0,
                                     dataset={{_base_.train_dataloader.dataset}}))
