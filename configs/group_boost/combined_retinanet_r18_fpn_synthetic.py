# Loss weight + weighted sampler + curriculum together.
_base_ = ['./curriculum_retinanet_r18_fpn_synthetic.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='WeightedGroupSampler',
                                     group_weights={1: 1.5}))
