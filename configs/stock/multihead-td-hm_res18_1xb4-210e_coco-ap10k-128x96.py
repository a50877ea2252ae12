# mmpose's top-down heatmap config, one head per dataset (COCO person, AP-10K animal); R-18
_base_ = ['mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py']
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
sources = dict(person=('CocoDataset', 'coco', 'test_coco.json'),
               animal=('AP10KDataset', 'ap10k', 'test_ap10k.json'))
codec = dict(_base_.codec, input_size=(96, 128), heatmap_size=(24, 32))
model = dict(type='MultiHeadPoseEstimator', head=None, backbone=dict(depth=18, init_cfg=None),
             heads={n: dict(_base_.model.head, in_channels=512, decoder=codec) for n in sources})
__fit = dict(type='TopdownAffine', input_size=codec['input_size'])
__target = dict(type='GenerateTarget', encoder=codec)
__loader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dict(
    _delete_=True, type='MultiSourceDataset', datasets=[dict(
        type=t, group_name=n, data_root='../shared/data/real/', data_mode='topdown',
        ann_file=f'{d}/{a}', data_prefix=dict(img=f'{d}/')) for n, (t, d, a) in sources.items()]))
train_dataloader = dict(__loader, dataset=dict(__loader['dataset'], pipeline=[
    *_base_.train_pipeline[:5], __fit, __target, _base_.train_pipeline[-1]]))
val_dataloader = dict(__loader, dataset=dict(__loader['dataset'], pipeline=[
    *_base_.val_pipeline[:2], __fit, _base_.val_pipeline[-1]]))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='GroupedMetric', metrics={n: dict(type='CocoMetric',
    ann_file=f'../shared/data/real/{d}/{a}') for n, (_, d, a) in sources.items()})
test_evaluator = val_evaluator
custom_hooks = [*_base_.custom_hooks, dict(type='HeadIsolationHook'),
                dict(type='SaveBestCheckHook')]
find_unused_parameters = True
default_hooks = dict(checkpoint=dict(save_best='mean/coco/AP'))  # stock 'coco/AP': per group
