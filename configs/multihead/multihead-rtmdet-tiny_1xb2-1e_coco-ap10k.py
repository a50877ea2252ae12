# Light-head variant: RTMDet-tiny (CSPNeXt + PAFPN, random init) with one RTMDet head per
# dataset. Sharing the backbone saves the most here (INSTALL.md: heads are ~25% of the time).
_base_ = ['./multihead-retinanet_r18_fpn_1xb2-1e_coco-ap10k.py']


__rtmdet_head = dict(
    type='RTMDetSepBNHead', num_classes=1, in_channels=96, stacked_convs=2, feat_channels=96,
    anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
    bbox_coder=dict(type='DistancePointBBoxCoder'),
    loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=2.0), with_objectness=False, exp_on_reg=False,
    share_conv=True, pred_kernel_size=1, norm_cfg=dict(type='BN'),
    act_cfg=dict(type='SiLU', inplace=True))
model = dict(
    _delete_=True,
    type='MultiHeadDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                           std=[57.375, 57.12, 58.395], bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(type='CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=0.167,
                  widen_factor=0.375, channel_attention=True, norm_cfg=dict(type='BN'),
                  act_cfg=dict(type='SiLU', inplace=True)),
    neck=dict(type='CSPNeXtPAFPN', in_channels=[96, 192, 384], out_channels=96,
              num_csp_blocks=1, expand_ratio=0.5, norm_cfg=dict(type='BN'),
              act_cfg=dict(type='SiLU', inplace=True)),
    heads=dict(person=dict(__rtmdet_head, num_classes=1),
               animal=dict(__rtmdet_head, num_classes=54)),
    train_cfg=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13), allowed_border=-1,
                   pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.65), max_per_img=100))
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05))
