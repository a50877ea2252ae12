# Ablation family (detector), row 0 "baseline": the fine task only. Multi-head RetinaNet-R18
# on the generated person + animal sources, validated every epoch; early stopping
# (TestableEarlyStoppingHook: MMEngine's, which tools/test.py can run) stops on the main
# task's metric (mean of the groups' bbox mAP) and the best checkpoint is kept.
# The other rows change one thing each:
#   mtl-dshead_*       + dataset-classification head (weight 0.4 -> 0.15)
#   mtl-dshead-grl_*   + the head behind gradient reversal (DANN lambda schedule)
#   mtl-uncertainty_*  + uncertainty loss weighting over the tasks person / animal / aux
#   mtl-pcgrad_*       + PCGrad on the shared parameters
#   mtl-two-stage_*    dataset head first (2 epochs), then joint fine-tuning
# Run them all and tabulate: python tools/ablate.py configs/mtl/mtl-*_retinanet_*.py --run ...
_base_ = [
    '../_base_/models/multihead_retinanet_r18_fpn.py', '../_base_/datasets/synthetic_det.py',
    '../_base_/schedules/adamw_4e.py', '../_base_/runtime/det_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
train_cfg = dict(max_epochs=6, val_interval=1)
default_hooks = dict(logger=dict(interval=5),
                     checkpoint=dict(interval=1, max_keep_ckpts=1, save_best='mean/coco/bbox_mAP',
                                     rule='greater'))
log_processor = dict(window_size=5)
early_stopping = dict(type='TestableEarlyStoppingHook', monitor='mean/coco/bbox_mAP',
                      rule='greater',
                      patience=3, min_delta=0.001)
custom_hooks = _base_.custom_hooks + [early_stopping]  # head isolation, early stopping
# the rows' dataset-classification head on the pooled FPN levels (not used by this row)
dataset_cls_head = dict(type='DatasetClsHead', in_channels=64, num_groups=2, feat_index='all',
                        num_levels=5, hidden_channels=128, loss_weight=0.4)
