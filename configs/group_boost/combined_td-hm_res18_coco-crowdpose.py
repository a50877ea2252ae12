# Loss weight + weighted sampler + curriculum together: CrowdPose drawn 1.5x as often, and
# its loss weight scheduled 1.0 -> 1.5 -> 2.0 (epochs 1, 2; use e.g. [50, 100] in real runs).
_base_ = ['./curriculum_td-hm_res18_coco-crowdpose.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='WeightedGroupSampler',
                                     group_weights={1: 1.5}))
