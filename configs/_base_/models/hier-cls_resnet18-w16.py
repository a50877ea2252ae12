# HierarchicalClassifier on a ResNet-18 of base width 16 (last level: 16 * 2**3 = 128
# channels): a dataset head over the two groups, one class head per group (person: 2 classes,
# animal: 3, the generated classification sources'). Loss (1 - alpha) class + alpha dataset.
model = dict(
    type='HierarchicalClassifier',
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3, ),
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    dataset_head=dict(type='DatasetClsHead', in_channels=128, num_groups=2,
                      hidden_channels=64, gradient_reversal=False),
    heads=dict(person=dict(num_classes=2), animal=dict(num_classes=3)),
    alpha=0.3)
