# Ablation family (detector), row 0 "baseline": the fine task only. Multi-head RetinaNet-R18
# on the generated person + animal sources, validated every epoch; MMEngine's
# EarlyStoppingHook stops on the main task's metric (mean of the groups' bbox mAP) and the
# best checkpoint is kept. The other rows change one thing each:
#   mtl-dshead_*       + dataset-classification head (weight 0.4 -> 0.15)
#   mtl-dshead-grl_*   + the head behind gradient reversal (DANN lambda schedule)
#   mtl-uncertainty_*  + uncertainty loss weighting over the tasks person / animal / aux
#   mtl-pcgrad_*       + PCGrad on the shared parameters
#   mtl-two-stage_*    dataset head first (2 epochs), then joint fine-tuning
# Run them all and tabulate: python tools/ablate.py configs/mtl/mtl-*_retinanet_*.py --run ...
_base_ = ['../demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py']
train_cfg = dict(max_epochs=6, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1, save_best='mean/coco/bbox_mAP',
                                     rule='greater'))
early_stopping = dict(type='EarlyStoppingHook', monitor='mean/coco/bbox_mAP', rule='greater',
                      patience=3, min_delta=0.001)
custom_hooks = [dict(type='HeadIsolationHook'), early_stopping]
