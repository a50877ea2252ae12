# COCO (group 0) + CrowdPose (group 1, its 14 keypoints converted to COCO's 17) person
# keypoints for top-down models at 128x96, from the small samples in ../shared/data/real;
# validated on COCO. Used by configs/group_boost/*pose*.
data_mode = 'topdown'  # read by MMPoseInferencer
dataset_type = 'MultiSourceDataset'  # MMPoseInferencer: no stock detector by default
data_root = '../shared/data/real/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
crowdpose_to_coco = [(i, i + 5) for i in range(12)]  # shoulders .. ankles

# the random part of the pipeline, a separate list so that schemes can wrap it
train_augment = [dict(type='RandomFlip', direction='horizontal'),
                 dict(type='RandomBBoxTransform')]
# pipeline pieces (private: not part of the config)
__load = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
# after RandomFlip, which uses the source's own flip_indices
__convert = [dict(type='KeypointConverter', num_keypoints=17, mapping=crowdpose_to_coco)]
__affine = [dict(type='TopdownAffine', input_size=codec['input_size'])]
__target = [dict(type='GenerateTarget', encoder=codec)]
__pack = [dict(type='PackPoseInputs')]

train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', metainfo='coco', datasets=[
        dict(type='CocoDataset', group_name='coco', group_id=0, data_root=data_root,
             data_mode='topdown', ann_file='coco/test_coco.json', data_prefix=dict(img='coco/'),
             test_mode=False, pipeline=__load + train_augment + __affine + __target + __pack),
        dict(type='CrowdPoseDataset', group_name='crowdpose', group_id=1, data_root=data_root,
             data_mode='topdown', ann_file='crowdpose/test_crowdpose.json',
             data_prefix=dict(img='crowdpose/'), test_mode=False,
             pipeline=__load + train_augment + __convert + __affine + __target + __pack),
    ]))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    # the pipeline on the MultiSourceDataset: mmpose's MMPoseInferencer reads it there
    # (test_dataloader.dataset.pipeline)
    dataset=dict(type='MultiSourceDataset', metainfo='coco',
                 pipeline=__load + __affine + __pack, datasets=[
                     dict(type='CocoDataset', group_name='coco', group_id=0,
                          data_root=data_root, data_mode='topdown',
                          ann_file='coco/test_coco.json', data_prefix=dict(img='coco/'),
                          test_mode=True),
                 ]))
test_dataloader = val_dataloader
val_evaluator = dict(type='GroupedMetric', metrics=dict(
    coco=dict(type='CocoMetric', ann_file=data_root + 'coco/test_coco.json')))
test_evaluator = val_evaluator
