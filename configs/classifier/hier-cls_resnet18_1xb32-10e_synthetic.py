# Hierarchical classification on generated single-object images (2 sources in their own
# looks): a small ResNet-18, a dataset head and one class head per source. Data:
#   python tools/generate_data.py data/synthetic_cls --classification --num-train 128 --num-val 32
# (measured on CPU, ~25 s: mean/e2e_accuracy 100.0 after 10 epochs; 83.3 with the
# generator's default 32 train images per class)
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
default_scope = 'mmdet'  # backbone=mmdet's ResNet
data_root = 'data/synthetic_cls/'
img_size = 64
sources = dict(person=('person', 'rider'), animal=('cat', 'bird', 'dog'))

model = dict(
    type='HierarchicalClassifier',
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3, ),
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    # last level of a ResNet-18 of base width 16: 16 * 2**3 = 128 channels
    dataset_head=dict(type='DatasetClsHead', in_channels=128, num_groups=len(sources),
                      hidden_channels=64, gradient_reversal=False),
    heads={name: dict(num_classes=len(classes)) for name, classes in sources.items()},
    alpha=0.3)

train_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='mmcv.Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='mmcv.RandomFlip', prob=0.5),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='mmcv.LoadImageFromFile'),
    dict(type='mmcv.Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='PackClsInputs'),
]


def _source(name, split, pipeline, test_mode=False):
    return dict(type='ClsJsonDataset', group_name=name, data_root=data_root,
                ann_file=f'annotations/cls_{name}_{split}.json', test_mode=test_mode,
                pipeline=pipeline)


train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset',
                 datasets=[_source(n, 'train', train_pipeline) for n in sources]))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiSourceDataset',
                 datasets=[_source(n, 'val', test_pipeline, True) for n in sources]))
test_dataloader = val_dataloader
val_evaluator = dict(type='HierarchicalAccuracy')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, eta_min=1e-4)]
# HeadIsolationHook hands the dataset meta to the model (heads checked against groups)
custom_hooks = [dict(type='HeadIsolationHook')]
find_unused_parameters = True  # a batch without a group leaves its head without gradient
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1,
                                     save_best='mean/e2e_accuracy', rule='greater'))
randomness = dict(seed=0)
