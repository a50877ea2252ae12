# Scheme 2, weighted sampling: every animal image is drawn twice as often.
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='WeightedGroupSampler',
                                     group_weights={1: 2.0}))
