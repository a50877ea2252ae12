# One stock RetinaNet (ResNet-18, random init, 320 px) over the union label space of COCO
# persons and AP-10K animals, evaluated per dataset: the foundation's real-data smoke run.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/real_person_animal_det.py',
    'mmdet::_base_/default_runtime.py'
]
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(num_classes=55, in_channels=64, feat_channels=64, stacked_convs=2))
train_dataloader = dict(dataset=dict(label_space='unified'))
val_dataloader = dict(dataset=dict(label_space='unified'))
test_dataloader = val_dataloader
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1),
                     visualization=dict(type='DetVisualizationHook', draw=False))
randomness = dict(seed=0)
