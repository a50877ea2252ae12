# SimpleBaseline top-down heatmap model for the generator's 4 keypoints: a narrow ResNet-18
# (random init, base_channels=16: stage widths 16-128, for CPU runs) on 64x64 inputs,
# heatmaps 16x16 (the decoder matches `codec` of configs/_base_/datasets/synthetic_pose.py).
# td-hm_res18.py with 4 outputs at 64x64 and 1/4 of its widths.
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18, base_channels=16),
    head=dict(type='HeatmapHead', in_channels=128, out_channels=4,
              deconv_out_channels=(64, 64, 64), deconv_kernel_sizes=(4, 4, 4),
              loss=dict(type='KeypointMSELoss', use_target_weight=True),
              decoder=dict(type='MSRAHeatmap', input_size=(64, 64), heatmap_size=(16, 16),
                           sigma=2)),
    test_cfg=dict(flip_test=False))
