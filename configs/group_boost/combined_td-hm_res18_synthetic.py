# Loss weight + weighted sampler + curriculum together: animal samples drawn 1.5x as often,
# and their loss weight scheduled 1.0 -> 1.5 -> 2.0 (as curriculum_*).
_base_ = ['./curriculum_td-hm_res18_synthetic.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='WeightedGroupSampler',
                                     group_weights={1: 1.5}))
