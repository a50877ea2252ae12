# One top-down model, two keypoint heads of different sizes: COCO's 17 person keypoints and
# Animal-Pose's 20 animal keypoints, a shared ResNet-18 (random init, 128x96). Each sample
# trains only its own dataset's head and is drawn with its own dataset's skeleton
# (GroupPoseLocalVisualizer); mmpose's init_model / inference_topdown / MMPoseInferencer
# read the test pipeline at test_dataloader.dataset.pipeline.
_base_ = [
    '../_base_/schedules/adam_1e.py', '../_base_/runtime/pose_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
data_root = '../shared/data/real/'
data_mode = 'topdown'  # read by MMPoseInferencer
# MMPoseInferencer picks a default person / animal detector from the dataset type's module:
# with MultiSourceDataset it picks none (whole image, or its det_model argument)
dataset_type = 'MultiSourceDataset'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
__head = dict(type='HeatmapHead', in_channels=512, deconv_out_channels=(64, 64, 64),
              deconv_kernel_sizes=(4, 4, 4),
              loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec)
model = dict(
    type='MultiHeadPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),
    heads=dict(person=dict(__head, out_channels=17), animal=dict(__head, out_channels=20)),
    # a box routed to no head (mmpose's inference_topdown, MMPoseInferencer) runs every head;
    # pred_instances holds this head's keypoints, pred_instances_<head> each head's
    default_head='person',
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=True))

train_pipeline = [
    dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'), dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs')]
test_pipeline = [
    dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size']), dict(type='PackPoseInputs')]
sources = dict(person=('CocoDataset', 'coco', 'test_coco.json'),
               animal=('AnimalPoseDataset', 'animalpose', 'test_animalpose.json'))
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', pipeline=train_pipeline, datasets=[
        dict(type=kind, group_name=n, data_root=data_root, data_mode='topdown',
             ann_file=f'{folder}/{ann}', data_prefix=dict(img=f'{folder}/'), test_mode=False)
        for n, (kind, folder, ann) in sources.items()]))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MultiSourceDataset', pipeline=test_pipeline, datasets=[
        dict(type=kind, group_name=n, data_root=data_root, data_mode='topdown',
             ann_file=f'{folder}/{ann}', data_prefix=dict(img=f'{folder}/'), test_mode=True)
        for n, (kind, folder, ann) in sources.items()]))
test_dataloader = val_dataloader
val_evaluator = dict(type='GroupedMetric', metrics={
    n: dict(type='CocoMetric', ann_file=f'{data_root}{f}/{a}') for n, (_, f, a) in sources.items()})
test_evaluator = val_evaluator

# kept from mmpose's default_runtime.py
default_hooks = dict(badcase=dict(type='BadCaseAnalysisHook', enable=False, out_dir='badcase',
                                  metric_type='loss', badcase_thr=5))
backend_args = dict(backend='local')
