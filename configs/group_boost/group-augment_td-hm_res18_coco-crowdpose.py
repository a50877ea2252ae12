# Scheme 3, differentiated augmentation: stronger geometric augmentation for CrowdPose
# (group 1), the usual one for COCO, in one pipeline shared by both sources.
_base_ = ['../_base_/group_boost_pose.py']
data_root = '../shared/data/real/'
codec = dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
augment = dict(type='GroupBasedAugmentation', transforms={
    1: [dict(type='RandomFlip', direction='horizontal'),
        dict(type='RandomBBoxTransform', rotate_factor=60.0, scale_factor=(0.6, 1.4)),
        dict(type='RandomHalfBody')],
    'default': [dict(type='RandomFlip', direction='horizontal'),
                dict(type='RandomBBoxTransform')]})


def train_pipeline(convert):
    steps = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'), augment]
    if convert:
        steps.append(dict(type='KeypointConverter', num_keypoints=17,
                          mapping=[(i, i + 5) for i in range(12)]))
    return steps + [dict(type='TopdownAffine', input_size=codec['input_size']),
                    dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs')]


train_dataloader = dict(dataset=dict(_delete_=True, type='MultiSourceDataset', metainfo='coco',
                                     datasets=[
    dict(type='CocoDataset', group_name='coco', group_id=0, data_root=data_root,
         data_mode='topdown', ann_file='coco/test_coco.json', data_prefix=dict(img='coco/'),
         pipeline=train_pipeline(False)),
    dict(type='CrowdPoseDataset', group_name='crowdpose', group_id=1, data_root=data_root,
         data_mode='topdown', ann_file='crowdpose/test_crowdpose.json',
         data_prefix=dict(img='crowdpose/'), pipeline=train_pipeline(True))]))
