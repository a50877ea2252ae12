# mmdet's RetinaNet R-18 as one RetinaHead per dataset (person, animal); docs/stock_configs.md
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
          '../_base_/runtime/multihead_runtime.py']
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
data_root = '../shared/data/real/'
sources = dict(person=('coco', 'test_coco.json', ('person', )),
               animal=('ap10k', 'test_ap10k.json', ('antelope', 'jaguar')))
model = dict(type='MultiHeadDetector', bbox_head=None, backbone=dict(init_cfg=None), heads={
    n: dict(_base_.model.bbox_head, num_classes=len(c)) for n, (_, _, c) in sources.items()})
__resize = dict(type='Resize', scale=(128, 128), keep_ratio=True)
__sources = [dict(type='CocoDataset', group_name=n, data_root=data_root, ann_file=f'{d}/{a}',
                  data_prefix=dict(img=f'{d}/'), metainfo=dict(classes=c))
             for n, (d, a, c) in sources.items()]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    _delete_=True, type='MultiSourceDataset', datasets=__sources, pipeline=[
        *_base_.train_pipeline[:2], __resize, *_base_.train_pipeline[3:]]))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    _delete_=True, type='MultiSourceDataset', datasets=[dict(s, test_mode=True) for s in __sources],
    pipeline=[_base_.test_pipeline[0], __resize, *_base_.test_pipeline[2:]]))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='GroupedMetric', metrics={
    n: dict(type='CocoMetric', ann_file=f'{data_root}{d}/{a}') for n, (d, a, _) in sources.items()})
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)
default_hooks = dict(checkpoint=dict(save_best='mean/coco/bbox_mAP', rule='greater'))
