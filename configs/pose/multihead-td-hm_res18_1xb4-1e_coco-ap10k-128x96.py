# One top-down model, two keypoint heads: COCO person keypoints and AP-10K animal keypoints
# (17 each, different skeletons), a shared ResNet-18 (random init, 128x96). Each sample trains
# only its own dataset's head; each dataset is evaluated with its own CocoMetric.
_base_ = ['mmpose::_base_/default_runtime.py']
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
data_root = '../shared/data/real/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)


def heatmap_head(num_keypoints):
    return dict(type='HeatmapHead', in_channels=512, out_channels=num_keypoints,
                deconv_out_channels=(64, 64, 64), deconv_kernel_sizes=(4, 4, 4),
                loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec)


model = dict(
    type='MultiHeadPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),
    heads=dict(person=heatmap_head(17), animal=heatmap_head(17)),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True))
custom_hooks = [dict(type='HeadIsolationHook')]
find_unused_parameters = True


def _pipeline(train):
    steps = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
    if train:
        steps += [dict(type='RandomFlip', direction='horizontal'),
                  dict(type='RandomBBoxTransform')]
    steps.append(dict(type='TopdownAffine', input_size=codec['input_size']))
    if train:
        steps.append(dict(type='GenerateTarget', encoder=codec))
    return steps + [dict(type='PackPoseInputs')]


sources = dict(person=('CocoDataset', 'coco', 'test_coco.json'),
               animal=('AP10KDataset', 'ap10k', 'test_ap10k.json'))


def _source(name, train):
    kind, folder, ann = sources[name]
    return dict(type=kind, group_name=name, data_root=data_root, data_mode='topdown',
                ann_file=f'{folder}/{ann}', data_prefix=dict(img=f'{folder}/'),
                test_mode=not train, pipeline=_pipeline(train))


train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', datasets=[_source(n, True) for n in sources]))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MultiSourceDataset', datasets=[_source(n, False) for n in sources]))
test_dataloader = val_dataloader
val_evaluator = dict(type='GroupedMetric', metrics={
    n: dict(type='CocoMetric', ann_file=f'{data_root}{f}/{a}') for n, (_, f, a) in sources.items()})
test_evaluator = val_evaluator

train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1),
                     visualization=dict(type='PoseVisualizationHook', enable=False))
randomness = dict(seed=0)
