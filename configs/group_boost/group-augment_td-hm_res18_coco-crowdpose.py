# Scheme 3, differentiated augmentation: stronger geometric augmentation for CrowdPose
# (group 1), the usual one for COCO, in one pipeline shared by both sources.
_base_ = [
    '../_base_/models/td-hm_res18.py', '../_base_/datasets/coco_crowdpose_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
augment = dict(type='GroupBasedAugmentation', transforms={
    1: [dict(type='RandomFlip', direction='horizontal'),
        dict(type='RandomBBoxTransform', rotate_factor=60.0, scale_factor=(0.6, 1.4)),
        dict(type='RandomHalfBody')],
    'default': [dict(type='RandomFlip', direction='horizontal'),
                dict(type='RandomBBoxTransform')]})

__codec = _base_.codec
__pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'), augment]
__encode = [dict(type='TopdownAffine', input_size=__codec.input_size),
            dict(type='GenerateTarget', encoder=__codec), dict(type='PackPoseInputs')]
__convert = [dict(type='KeypointConverter', num_keypoints=17, mapping=_base_.crowdpose_to_coco)]
train_dataloader = dict(dataset=dict(_delete_=True, type='MultiSourceDataset', metainfo='coco',
                                     datasets=[
    dict(type='CocoDataset', group_name='coco', group_id=0, data_root=_base_.data_root,
         data_mode='topdown', ann_file='coco/test_coco.json', data_prefix=dict(img='coco/'),
         pipeline=__pipeline + __encode),
    dict(type='CrowdPoseDataset', group_name='crowdpose', group_id=1, data_root=_base_.data_root,
         data_mode='topdown', ann_file='crowdpose/test_crowdpose.json',
         data_prefix=dict(img='crowdpose/'), pipeline=__pipeline + __convert + __encode)]))
