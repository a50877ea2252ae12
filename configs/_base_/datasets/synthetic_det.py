# Two generated sources (tools/generate_data.py): "person" annotates only person,
# "animal" only cat and bird; each source's images also hold the other's objects, unlabelled.
data_root = 'data/synthetic/'
img_scale = (128, 128)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

sources = dict(person=('person', ), animal=('cat', 'bird'))
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoDataset', group_name=n, data_root=data_root,
             ann_file=f'annotations/{n}_train.json', data_prefix=dict(img=f'images/{n}/'),
             metainfo=dict(classes=c), filter_cfg=dict(filter_empty_gt=True, min_size=4),
             test_mode=False, pipeline=train_pipeline, backend_args=backend_args)
        for n, c in sources.items()]))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # the test pipeline at the MultiSourceDataset level (shared by the sources): where
    # mmdet's DetInferencer / inference_detector read it (test_dataloader.dataset.pipeline)
    dataset=dict(type='MultiSourceDataset', pipeline=test_pipeline, datasets=[
        dict(type='CocoDataset', group_name=n, data_root=data_root,
             ann_file=f'annotations/{n}_val.json', data_prefix=dict(img=f'images/{n}/'),
             metainfo=dict(classes=c), filter_cfg=None, test_mode=True,
             backend_args=backend_args)
        for n, c in sources.items()]))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='GroupedMetric',
    metrics={n: dict(type='CocoMetric', ann_file=f'{data_root}annotations/{n}_val.json',
                     metric='bbox', format_only=False) for n in sources})
test_evaluator = val_evaluator
