# Two-stage variant: one class-agnostic RPN shared by both datasets (an object a dataset does
# not label is background for the RPN on that dataset's images), one RoI head per dataset.
_base_ = ['./multihead-retinanet_r18_fpn_1xb2-1e_coco-ap10k.py']


__roi_head = dict(
    type='StandardRoIHead',
    bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=64,
                            featmap_strides=[4, 8, 16, 32],
                            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)))
__bbox_head = dict(
    type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=256, roi_feat_size=7,
    num_classes=1,
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                    target_stds=[0.1, 0.1, 0.2, 0.2]),
    reg_class_agnostic=False,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='L1Loss', loss_weight=1.0))
model = dict(
    neck=dict(start_level=0, add_extra_convs=False, num_outs=5),
    rpn_head=dict(type='RPNHead', in_channels=64, feat_channels=64,
                  anchor_generator=dict(type='AnchorGenerator', scales=[8],
                                        ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
                  bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                                  target_stds=[1.0, 1.0, 1.0, 1.0]),
                  loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                  loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    heads=dict(_delete_=True,
               person=dict(__roi_head, bbox_head=dict(__bbox_head, num_classes=1)),
               animal=dict(__roi_head, bbox_head=dict(__bbox_head, num_classes=54))),
    train_cfg=dict(
        _delete_=True,
        rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                               min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
                 sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                              add_gt_as_proposals=False),
                 allowed_border=-1, pos_weight=-1, debug=False),
        rpn_proposal=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                          min_bbox_size=0),
        default=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                   min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
                     sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25,
                                  neg_pos_ub=-1, add_gt_as_proposals=True),
                     pos_weight=-1, debug=False)),
    test_cfg=dict(
        _delete_=True,
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                 min_bbox_size=0),
        default=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
