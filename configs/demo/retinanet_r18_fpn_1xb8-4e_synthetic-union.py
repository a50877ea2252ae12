# Baseline: one stock RetinaNet over the union label space of the two generated sources
# (labels shifted by MultiSourceDataset(label_space='unified'); a class a source does not
# annotate counts as background there). Evaluated per group in each group's label space.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/synthetic_det.py',
    'mmdet::_base_/default_runtime.py'
]
model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2))
train_dataloader = dict(dataset=dict(label_space='unified'))
val_dataloader = dict(dataset=dict(label_space='unified'))
test_dataloader = val_dataloader
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10))
param_scheduler = []
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=4, max_keep_ckpts=1),
                     visualization=dict(type='DetVisualizationHook', draw=False))
log_processor = dict(window_size=5)
randomness = dict(seed=0)
