# Top-down heatmap pose (SimpleBaseline, ResNet-18, random init, 128x96) trained on COCO and
# CrowdPose persons through MultiSourceDataset (CrowdPose's 14 keypoints converted to COCO's
# 17), evaluated per dataset with mmpose's CocoMetric.
_base_ = ['mmpose::_base_/default_runtime.py']
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
data_root = '../shared/data/real/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
# CrowdPose keypoint i (shoulders .. ankles) is COCO keypoint i + 5
crowdpose_to_coco = [(i, i + 5) for i in range(12)]

model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),
    head=dict(type='HeatmapHead', in_channels=512, out_channels=17, deconv_out_channels=(64, 64, 64),
              deconv_kernel_sizes=(4, 4, 4),
              loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec),
    test_cfg=dict(flip_test=False))


def _pipeline(train, convert=None):
    steps = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
    if train:
        steps += [dict(type='RandomFlip', direction='horizontal'),
                  dict(type='RandomBBoxTransform')]
    if convert:
        # after the flip, which must use the source's own flip_indices
        steps.append(dict(type='KeypointConverter', num_keypoints=17, mapping=convert))
    steps.append(dict(type='TopdownAffine', input_size=codec['input_size']))
    if train:
        steps.append(dict(type='GenerateTarget', encoder=codec))
    return steps + [dict(type='PackPoseInputs')]


def _source(name, folder, ann, train, convert=None):
    return dict(type='CocoDataset' if name == 'coco' else 'CrowdPoseDataset', group_name=name,
                data_root=data_root, data_mode='topdown', ann_file=f'{folder}/{ann}',
                data_prefix=dict(img=f'{folder}/'), test_mode=not train,
                pipeline=_pipeline(train, convert))


train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', metainfo='coco', datasets=[
        _source('coco', 'coco', 'test_coco.json', True),
        _source('crowdpose', 'crowdpose', 'test_crowdpose.json', True, crowdpose_to_coco)]))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MultiSourceDataset', metainfo='coco', datasets=[
        _source('coco', 'coco', 'test_coco.json', False)]))
test_dataloader = val_dataloader
val_evaluator = dict(type='GroupedMetric', metrics=dict(
    coco=dict(type='CocoMetric', ann_file=data_root + 'coco/test_coco.json')))
test_evaluator = val_evaluator

train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1),
                     visualization=dict(type='PoseVisualizationHook', enable=False))
randomness = dict(seed=0)
