# Teacher of the consolidation loop (tools/consolidate_loop.py): one RetinaNet head over the
# union of the sources' classes (MultiHeadDetector's masked union mode: a class a sample's
# source does not annotate gets no gradient on that sample), trained with CrossSourcePaste:
# half the images get up to 3 objects cut out of another source's image, labelled for that
# source's classes inside the pasted boxes only. So the head sees every class on every look
# and never learns "this look never holds those classes" (docs/consolidation_loop.md).
_base_ = [  # the bases of configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py
    '../_base_/models/multihead_retinanet_r18_fpn.py', '../_base_/datasets/synthetic_det.py',
    '../_base_/schedules/adamw_4e.py', '../_base_/runtime/det_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=4, max_keep_ckpts=1))
log_processor = dict(window_size=5)
classes = ('person', 'cat', 'bird')
union_head = dict(
    type='RetinaHead', num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2,
    anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                          ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                    target_stds=[1.0, 1.0, 1.0, 1.0]),
    loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_bbox=dict(type='L1Loss', loss_weight=1.0))
model = dict(heads=dict(_delete_=True, union=union_head), head_classes=dict(union=classes),
             group_to_head=dict(person='union', animal='union'), partial_label_masking=True)
paste_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='CrossSourcePaste', prob=0.5, max_objects=3, margin=0.1),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
data_root = 'data/synthetic/'
sources = dict(person=('person', ), animal=('cat', 'bird'))
train_dataloader = dict(dataset=dict(label_space='unified', datasets=[
    dict(type='CocoDataset', group_name=name, data_root=data_root,
         ann_file=f'annotations/{name}_train.json', data_prefix=dict(img=f'images/{name}/'),
         metainfo=dict(classes=cls), filter_cfg=dict(filter_empty_gt=True, min_size=4),
         pipeline=paste_pipeline) for name, cls in sources.items()]))
