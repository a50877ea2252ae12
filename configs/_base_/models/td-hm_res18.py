# SimpleBaseline top-down heatmap model: ResNet-18 (random init), 17 COCO keypoints, 128x96
# input (the codec is the data bases' `codec`).
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(type='ResNet', depth=18),
    head=dict(type='HeatmapHead', in_channels=512, out_channels=17,
              deconv_out_channels=(64, 64, 64), deconv_kernel_sizes=(4, 4, 4),
              loss=dict(type='KeypointMSELoss', use_target_weight=True),
              decoder=dict(type='MSRAHeatmap', input_size=(96, 128), heatmap_size=(24, 32),
                           sigma=2)),
    test_cfg=dict(flip_test=False))
