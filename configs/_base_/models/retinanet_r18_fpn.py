# mmdet's RetinaNet with a ResNet-18 (random init) and a 64-channel FPN / head; configs set
# bbox_head.num_classes.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=2))
