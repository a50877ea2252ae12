# Scheme 3, differentiated augmentation: photometric + scale jitter for animal images only.
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
augment = dict(type='GroupBasedAugmentation', transforms={
    1: [dict(type='RandomFlip', prob=0.5), dict(type='PhotoMetricDistortion'),
        dict(type='RandomResize', scale=(128, 128), ratio_range=(0.8, 1.25), keep_ratio=True)],
    'default': [dict(type='RandomFlip', prob=0.5),
                dict(type='Resize', scale=(128, 128), keep_ratio=True)]})
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            augment, dict(type='PackDetInputs')]
classes = dict(person=('person', ), animal=('cat', 'bird'))
train_dataloader = dict(dataset=dict(_delete_=True, type='MultiSourceDataset',
                                     label_space='unified', datasets=[
    dict(type='CocoDataset', group_name=g, data_root='data/synthetic/',
         ann_file=f'annotations/{g}_train.json', data_prefix=dict(img=f'images/{g}/'),
         metainfo=dict(classes=c), filter_cfg=dict(filter_empty_gt=True, min_size=4),
         pipeline=pipeline) for g, c in classes.items()]))
