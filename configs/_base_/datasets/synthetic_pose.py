# Generated person (group 0) and animal (group 1) objects (mtl_plugin.synthetic, e.g.
# tools/generate_data.py), each with the generator's 4 keypoints (top, right, bottom, left
# extreme point of its outline), for top-down models at 64x64 (heatmaps 16x16); validated
# per group (`<group>/coco/AP`, keypoint AP on that group's own val file, GT boxes).
# Used by configs/group_boost/*_td-hm_res18_synthetic.py (benchmarks/group_boost_pose.py).
data_mode = 'topdown'  # read by MMPoseInferencer
dataset_type = 'MultiSourceDataset'  # MMPoseInferencer: no stock detector by default
data_root = 'data/synthetic/'
codec = dict(type='MSRAHeatmap', input_size=(64, 64), heatmap_size=(16, 16), sigma=2)
# mmpose dataset_info of the 4 generator keypoints; right <-> left are the flip pair
synthetic_keypoints = dict(
    dataset_name='synthetic_keypoints',
    keypoint_info={
        0: dict(name='top', id=0, color=[255, 128, 0], type='upper', swap=''),
        1: dict(name='right', id=1, color=[0, 255, 0], type='upper', swap='left'),
        2: dict(name='bottom', id=2, color=[51, 153, 255], type='lower', swap=''),
        3: dict(name='left', id=3, color=[255, 0, 255], type='upper', swap='right')},
    skeleton_info={
        0: dict(link=('top', 'right'), id=0, color=[0, 255, 0]),
        1: dict(link=('right', 'bottom'), id=1, color=[0, 255, 0]),
        2: dict(link=('bottom', 'left'), id=2, color=[255, 128, 0]),
        3: dict(link=('left', 'top'), id=3, color=[255, 128, 0])},
    joint_weights=[1.0, 1.0, 1.0, 1.0],
    sigmas=[0.05, 0.05, 0.05, 0.05])

# The random part of the pipeline, a list of its own so that schemes can wrap it: shift and
# scale only. No flip and no rotation: the keypoints are extreme points of the outline, and
# for the animal shapes (triangle, square) two of them tie (a corner is both 'right' and
# 'bottom'), so a flipped or rotated sample would carry different labels than a generated one.
train_augment = [dict(type='RandomBBoxTransform', rotate_prob=0.0)]
# pipeline pieces (private: not part of the config)
__load = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale')]
__encode = [dict(type='TopdownAffine', input_size=codec['input_size']),
            dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs')]
__test = [dict(type='TopdownAffine', input_size=codec['input_size']),
          dict(type='PackPoseInputs')]
__groups = ('person', 'animal')  # group ids 0, 1

train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MultiSourceDataset', datasets=[
        dict(type='CocoDataset', group_name=g, group_id=i, data_root=data_root,
             data_mode='topdown', ann_file=f'annotations/{g}_train.json',
             data_prefix=dict(img=f'images/{g}/'), metainfo=synthetic_keypoints,
             test_mode=False, pipeline=__load + train_augment + __encode)
        for i, g in enumerate(__groups)]))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MultiSourceDataset', pipeline=__load + __test, datasets=[
        dict(type='CocoDataset', group_name=g, group_id=i, data_root=data_root,
             data_mode='topdown', ann_file=f'annotations/{g}_val.json',
             data_prefix=dict(img=f'images/{g}/'), metainfo=synthetic_keypoints,
             test_mode=True)
        for i, g in enumerate(__groups)]))
test_dataloader = val_dataloader
val_evaluator = dict(type='GroupedMetric', metrics={
    g: dict(type='CocoMetric', ann_file=f'{data_root}annotations/{g}_val.json')
    for g in __groups})
test_evaluator = val_evaluator
