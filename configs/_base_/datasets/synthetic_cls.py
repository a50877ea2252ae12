# Generated single-object images of two sources in their own looks, for the hierarchical
# classifier:
#   python tools/generate_data.py data/synthetic_cls --classification --num-train 128 --num-val 32
data_root = 'data/synthetic_cls/'
img_size = 64
sources = dict(person=('person', 'rider'), animal=('cat', 'bird', 'dog'))

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

train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', datasets=[
        dict(type='ClsJsonDataset', group_name=n, data_root=data_root,
             ann_file=f'annotations/cls_{n}_train.json', test_mode=False,
             pipeline=train_pipeline) for n in sources]))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MultiSourceDataset', datasets=[
        dict(type='ClsJsonDataset', group_name=n, data_root=data_root,
             ann_file=f'annotations/cls_{n}_val.json', test_mode=True,
             pipeline=test_pipeline) for n in sources]))
test_dataloader = val_dataloader
val_evaluator = dict(type='HierarchicalAccuracy')
test_evaluator = val_evaluator
