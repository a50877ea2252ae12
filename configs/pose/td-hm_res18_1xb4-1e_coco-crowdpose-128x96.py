# Top-down heatmap pose (SimpleBaseline, ResNet-18, random init, 128x96) trained on COCO and
# CrowdPose persons through MultiSourceDataset (CrowdPose's 14 keypoints converted to COCO's
# 17), evaluated per dataset with mmpose's CocoMetric.
_base_ = [
    '../_base_/models/td-hm_res18.py', '../_base_/schedules/adam_1e.py',
    '../_base_/runtime/pose_runtime.py'
]
data_mode = 'topdown'  # read by MMPoseInferencer
dataset_type = 'MultiSourceDataset'  # MMPoseInferencer: no stock detector by default
data_root = '../shared/data/real/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
# CrowdPose keypoint i (shoulders .. ankles) is COCO keypoint i + 5
crowdpose_to_coco = [(i, i + 5) for i in range(12)]

__load = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
__augment = [dict(type='RandomFlip', direction='horizontal'), dict(type='RandomBBoxTransform')]
# after the flip, which must use the source's own flip_indices
__convert = [dict(type='KeypointConverter', num_keypoints=17, mapping=crowdpose_to_coco)]
__affine = [dict(type='TopdownAffine', input_size=codec['input_size'])]
__target = [dict(type='GenerateTarget', encoder=codec)]
__pack = [dict(type='PackPoseInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', metainfo='coco', datasets=[
        dict(type='CocoDataset', group_name='coco', data_root=data_root, data_mode='topdown',
             ann_file='coco/test_coco.json', data_prefix=dict(img='coco/'), test_mode=False,
             pipeline=__load + __augment + __affine + __target + __pack),
        dict(type='CrowdPoseDataset', group_name='crowdpose', data_root=data_root,
             data_mode='topdown', ann_file='crowdpose/test_crowdpose.json',
             data_prefix=dict(img='crowdpose/'), test_mode=False,
             pipeline=__load + __augment + __convert + __affine + __target + __pack)]))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    # the pipeline on the MultiSourceDataset: MMPoseInferencer reads it there
    dataset=dict(type='MultiSourceDataset', metainfo='coco', pipeline=__load + __affine + __pack,
                 datasets=[dict(type='CocoDataset', group_name='coco', data_root=data_root,
                                data_mode='topdown', ann_file='coco/test_coco.json',
                                data_prefix=dict(img='coco/'), test_mode=True)]))
test_dataloader = val_dataloader
val_evaluator = dict(type='GroupedMetric', metrics=dict(
    coco=dict(type='CocoMetric', ann_file=data_root + 'coco/test_coco.json')))
test_evaluator = val_evaluator

# kept from mmpose's default_runtime.py
default_hooks = dict(badcase=dict(type='BadCaseAnalysisHook', enable=False, out_dir='badcase',
                                  metric_type='loss', badcase_thr=5))
custom_hooks = [dict(type='SyncBuffersHook')]  # syncs BN buffers at the end of each epoch
backend_args = dict(backend='local')
