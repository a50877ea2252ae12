# Person (COCO) + animal (AP-10K) detection on the small real samples in ../shared/data/real.
data_root = '../shared/data/real/'
img_scale = (320, 320)
backend_args = None
AP10K_CLASSES = (
    'antelope', 'argali sheep', 'bison', 'buffalo', 'cow', 'sheep', 'arctic fox', 'dog', 'fox',
    'wolf', 'beaver', 'alouatta', 'monkey', 'noisy night monkey', 'spider monkey', 'uakari',
    'deer', 'moose', 'hamster', 'elephant', 'horse', 'zebra', 'bobcat', 'cat', 'cheetah',
    'jaguar', 'king cheetah', 'leopard', 'lion', 'panther', 'snow leopard', 'tiger', 'giraffe',
    'hippo', 'chimpanzee', 'gorilla', 'orangutan', 'rabbit', 'skunk', 'mouse', 'rat', 'otter',
    'weasel', 'raccoon', 'rhino', 'marmot', 'squirrel', 'pig', 'mole', 'black bear',
    'brown bear', 'panda', 'polar bear', 'bat')
sources = dict(
    person=dict(ann_file='coco/test_coco.json', img='coco/', classes=('person', )),
    animal=dict(ann_file='ap10k/test_ap10k.json', img='ap10k/', classes=AP10K_CLASSES))

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

train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True), batch_sampler=None,
    dataset=dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoDataset', group_name=n, data_root=data_root, ann_file=s['ann_file'],
             data_prefix=dict(img=s['img']), metainfo=dict(classes=s['classes']),
             test_mode=False, filter_cfg=dict(filter_empty_gt=True, min_size=4),
             pipeline=train_pipeline, backend_args=backend_args)
        for n, s in sources.items()]))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    # the test pipeline at the MultiSourceDataset level: where mmdet's inferencers read it
    dataset=dict(type='MultiSourceDataset', pipeline=test_pipeline, datasets=[
        dict(type='CocoDataset', group_name=n, data_root=data_root, ann_file=s['ann_file'],
             data_prefix=dict(img=s['img']), metainfo=dict(classes=s['classes']),
             test_mode=True, filter_cfg=None, backend_args=backend_args)
        for n, s in sources.items()]))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='GroupedMetric',
    metrics={n: dict(type='CocoMetric', ann_file=data_root + s['ann_file'], metric='bbox')
             for n, s in sources.items()})
test_evaluator = val_evaluator
