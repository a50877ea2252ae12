# Single-group batches (as UniDet / Detic train): each batch holds one source only, groups
# chosen in proportion to their size, the same group on every rank at a step.
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
train_dataloader = dict(batch_sampler=dict(_delete_=True, type='GroupBatchSampler',
                                           same_group_across_ranks=True))
