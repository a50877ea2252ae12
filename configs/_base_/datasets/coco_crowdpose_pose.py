# Shared by configs/group_boost/*pose*: SimpleBaseline ResNet-18 (random init, 128x96) on
# COCO (group 0) + CrowdPose (group 1, the subset to improve; its 14 keypoints converted to
# COCO's 17), evaluated per dataset. Each scheme config changes one thing.
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
default_scope = 'mmpose'
data_root = '../shared/data/real/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
crowdpose_to_coco = [(i, i + 5) for i in range(12)]  # shoulders .. ankles

model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),
    head=dict(type='HeatmapHead', in_channels=512, out_channels=17,
              deconv_out_channels=(64, 64, 64), deconv_kernel_sizes=(4, 4, 4),
              loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec),
    test_cfg=dict(flip_test=False))

# the random part of the pipeline, a separate list so that schemes can wrap it
train_augment = [dict(type='RandomFlip', direction='horizontal'),
                 dict(type='RandomBBoxTransform')]


def pipeline(train, augment=None, convert=False):
    steps = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
    if train:
        steps += augment if augment is not None else train_augment
    if convert:  # after RandomFlip, which uses the source's own flip_indices
        steps.append(dict(type='KeypointConverter', num_keypoints=17, mapping=crowdpose_to_coco))
    steps.append(dict(type='TopdownAffine', input_size=codec['input_size']))
    if train:
        steps.append(dict(type='GenerateTarget', encoder=codec))
    return steps + [dict(type='PackPoseInputs')]


def sources(train, augment=None):
    return [
        dict(type='CocoDataset', group_name='coco', group_id=0, data_root=data_root,
             data_mode='topdown', ann_file='coco/test_coco.json', data_prefix=dict(img='coco/'),
             test_mode=not train, pipeline=pipeline(train, augment)),
        dict(type='CrowdPoseDataset', group_name='crowdpose', group_id=1, data_root=data_root,
             data_mode='topdown', ann_file='crowdpose/test_crowdpose.json',
             data_prefix=dict(img='crowdpose/'), test_mode=not train,
             pipeline=pipeline(train, augment, convert=True)),
    ]


train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', metainfo='coco', datasets=sources(True)))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MultiSourceDataset', metainfo='coco', datasets=sources(False)[:1]))
test_dataloader = val_dataloader
val_evaluator = dict(type='GroupedMetric', metrics=dict(
    coco=dict(type='CocoMetric', ann_file=data_root + 'coco/test_coco.json')))
test_evaluator = val_evaluator

train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = []
default_hooks = dict(
    timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1), sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='PoseLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
