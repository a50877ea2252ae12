"""Tiny multi-head detectors and batches for fast unit tests (64 px, few channels)."""
import os.path as osp

import torch
from mmdet.structures import DetDataSample
from mmengine.registry import MODELS, init_default_scope
from mmengine.structures import InstanceData

GROUP_CLASSES = dict(person=('person', ), animal=('cat', 'bird'))
META = dict(classes=('person', 'cat', 'bird'), unified_classes=('person', 'cat', 'bird'),
            label_space='group', group_names=('person', 'animal'),
            group_metainfo={g: dict(classes=c) for g, c in GROUP_CLASSES.items()})


def retina(num_classes, ch=16):
    return dict(
        type='RetinaHead', num_classes=num_classes, in_channels=ch, feat_channels=ch,
        stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                              ratios=[1.0], strides=[8, 16]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25),
        loss_bbox=dict(type='L1Loss'))


TRAIN_CFG = dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                               min_pos_iou=0, ignore_iof_thr=-1),
                 sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
                 debug=False)
TEST_CFG = dict(nms_pre=100, min_bbox_size=0, score_thr=0.0, nms=dict(type='nms',
                iou_threshold=0.5), max_per_img=20)


def backbone_neck(ch=16):
    return dict(
        data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(1, 2),
                      norm_cfg=dict(type='BN')),
        neck=dict(type='FPN', in_channels=[16, 32], out_channels=ch, num_outs=2))


def build_detector(heads=None, **kw):
    init_default_scope('mmdet')
    cfg = dict(type='MultiHeadDetector', **backbone_neck(),
               heads=dict(person=retina(1), animal=retina(2)) if heads is None else heads,
               train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)
    cfg.update(kw)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def sample(group, seed, n_boxes=2, size=64):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n_boxes, 2, generator=g) * size * 0.5
    wh = 12 + torch.rand(n_boxes, 2, generator=g) * size * 0.4
    num_classes = len(GROUP_CLASSES[group])
    s = DetDataSample(metainfo=dict(group_name=group, group_id=int(group == 'animal'),
                                    img_shape=(size, size), ori_shape=(size, size),
                                    pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                    img_id=seed, batch_input_shape=(size, size)))
    s.gt_instances = InstanceData(bboxes=torch.cat([xy, (xy + wh).clamp(max=size)], 1),
                                  labels=torch.randint(0, num_classes, (n_boxes, ), generator=g))
    return s


def batch(groups, seed=0, size=64):
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[torch.randint(0, 255, (3, size, size), generator=g, dtype=torch.uint8)
                        for _ in groups],
                data_samples=[sample(grp, seed * 100 + i, size=size)
                              for i, grp in enumerate(groups)])


def write_tiny_config(root: str, path: str, groups: bool = True) -> str:
    """The synthetic data config (data under ``root``) with the tiny multi-head model,
    dumped to ``path``; ``groups=False`` validates on the person source alone."""
    from mmengine.config import Config
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = Config.fromfile(osp.join(repo, 'configs', '_base_', 'datasets', 'synthetic_det.py'))
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        for src in loader.dataset.datasets:
            src.data_root = root + '/'
    if not groups:
        shared = cfg.val_dataloader.dataset.pipeline  # the sources use the shared pipeline
        cfg.val_dataloader.dataset = cfg.val_dataloader.dataset.datasets[0]
        cfg.val_dataloader.dataset.setdefault('pipeline', shared)
    cfg.model = dict(type='MultiHeadDetector', **backbone_neck(),
                     heads=dict(person=retina(1), animal=retina(2)),
                     train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)
    cfg.default_scope = 'mmdet'
    cfg.dump(path)
    return path


def two_stage_kwargs():
    """A tiny Faster R-CNN-style multi-head: shared RPN, one RoI head per dataset."""
    roi = lambda n: dict(  # noqa: E731
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=16, featmap_strides=[8, 16],
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32, roi_feat_size=7,
                       num_classes=n, bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                                      target_stds=[0.1, 0.1, 0.2, 0.2]),
                       loss_cls=dict(type='CrossEntropyLoss'), loss_bbox=dict(type='L1Loss')))
    rcnn_train = dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                    min_pos_iou=0.5, ignore_iof_thr=-1),
                      sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25),
                      pos_weight=-1, debug=False)
    return dict(
        heads=dict(person=roi(1), animal=roi(2)),
        rpn_head=dict(type='RPNHead', in_channels=16, feat_channels=16,
                      anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[1.0],
                                            strides=[8, 16]),
                      bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                      loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
                      loss_bbox=dict(type='L1Loss')),
        train_cfg=dict(rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7,
                                              neg_iou_thr=0.3, min_pos_iou=0.3, ignore_iof_thr=-1),
                                sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5,
                                             add_gt_as_proposals=False),
                                allowed_border=-1, pos_weight=-1, debug=False),
                       rpn_proposal=dict(nms_pre=200, max_per_img=50,
                                         nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
                       default=rcnn_train),
        test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=50, nms=dict(type='nms', iou_threshold=0.7),
                               min_bbox_size=0),
                      default=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                                   max_per_img=20)))


GN = dict(type='GN', num_groups=8, requires_grad=True)
POINT_TRAIN = dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                   pos_weight=-1, debug=False)
ANCHORS = dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
               strides=[8, 16])


def dense_head(kind, n):
    """A tiny dense head of each family (16-channel inputs, levels of stride 8 and 16)."""
    common = dict(num_classes=n, in_channels=16, feat_channels=32, stacked_convs=1)
    return dict(
        retina=lambda: retina(n),
        fcos=lambda: dict(type='FCOSHead', **common, strides=[8, 16],
                          regress_ranges=((-1, 32), (32, 1e8))),
        atss=lambda: dict(type='ATSSHead', **common, anchor_generator=ANCHORS),
        gfl=lambda: dict(type='GFLHead', **common, anchor_generator=ANCHORS, reg_max=8,
                         loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0),
                         loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
                         loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
        rtmdet=lambda: dict(type='RTMDetHead', **common, norm_cfg=GN,
                            anchor_generator=dict(type='MlvlPointGenerator', offset=0,
                                                  strides=[8, 16]),
                            bbox_coder=dict(type='DistancePointBBoxCoder'),
                            loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0),
                            loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
        yolox=lambda: dict(type='YOLOXHead', **common, strides=(8, 16), norm_cfg=GN),
    )[kind]()


DENSE_TRAIN = dict(retina=None, fcos=dict(), atss=POINT_TRAIN, gfl=POINT_TRAIN,
             rtmdet=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13),
                         allowed_border=-1, pos_weight=-1, debug=False),
             yolox=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)))
