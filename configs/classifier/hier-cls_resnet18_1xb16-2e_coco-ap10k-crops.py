# Hierarchical classification of real instance crops: COCO persons (1 class) and AP-10K
# animals (54 species) as two groups, from the small samples in ../shared/data/real.
# Every non-crowd box of at least 8 px becomes one 128 x 128 crop (10 % margin).
_base_ = ['../_base_/runtime/cls_runtime.py', '../_base_/runtime/multihead_runtime.py']
data_root = '../shared/data/real/'
img_size = 128
# classes come from each file's categories, sorted by category id (CocoCropClsDataset)
sources = dict(person=dict(ann_file='coco/test_coco.json', img='coco/', num_classes=1),
               animal=dict(ann_file='ap10k/test_ap10k.json', img='ap10k/', num_classes=54))

model = dict(
    type='HierarchicalClassifier',
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18, out_indices=(3, ),
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    dataset_head=dict(type='DatasetClsHead', in_channels=512, num_groups=len(sources),
                      hidden_channels=128, gradient_reversal=False),
    heads={name: dict(num_classes=s['num_classes']) for name, s in sources.items()},
    alpha=0.3)

train_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='CropInstance', padding=0.1),
    dict(type='mmcv.Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='mmcv.RandomFlip', prob=0.5),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='CropInstance', padding=0.1),
    dict(type='mmcv.Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='PackClsInputs'),
]


train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoCropClsDataset', group_name=n, data_root=data_root,
             ann_file=s['ann_file'], data_prefix=dict(img_path=s['img']), min_size=8,
             test_mode=False, pipeline=train_pipeline) for n, s in sources.items()]))
val_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoCropClsDataset', group_name=n, data_root=data_root,
             ann_file=s['ann_file'], data_prefix=dict(img_path=s['img']), min_size=8,
             test_mode=True, pipeline=test_pipeline) for n, s in sources.items()]))
test_dataloader = val_dataloader
val_evaluator = dict(type='HierarchicalAccuracy')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = []
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)
