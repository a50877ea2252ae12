# Scheme 3, differentiated augmentation: stronger augmentation for the animal group (wider
# scale and shift of the box, photometric distortion), the base's for person, in one
# pipeline shared by both sources (still no flip / rotation: see the dataset base).
_base_ = [
    '../_base_/models/td-hm_res18_synthetic-kp4.py', '../_base_/datasets/synthetic_pose.py',
    '../_base_/schedules/adam_2e.py', '../_base_/runtime/pose_runtime.py'
]
augment = dict(type='GroupBasedAugmentation', transforms={
    1: [dict(type='RandomBBoxTransform', shift_prob=0.6, scale_factor=(0.6, 1.4),
             rotate_prob=0.0),
        dict(type='PhotometricDistortion')],
    'default': _base_.train_augment})

__codec = _base_.codec
__pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'), augment,
              dict(type='TopdownAffine', input_size=__codec.input_size),
              dict(type='GenerateTarget', encoder=__codec), dict(type='PackPoseInputs')]
train_dataloader = dict(dataset=dict(datasets=[
    dict(_base_.train_dataloader.dataset.datasets[0], pipeline=__pipeline),
    dict(_base_.train_dataloader.dataset.datasets[1], pipeline=__pipeline)]))
