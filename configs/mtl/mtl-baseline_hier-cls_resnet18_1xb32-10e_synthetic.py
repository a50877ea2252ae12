# Ablation family (classifier), row 0 "baseline": the fine task only (alpha = 0: the
# dataset head gets no loss). HierarchicalClassifier on generated single-object images of two
# sources; validated every epoch; early stopping (TestableEarlyStoppingHook: MMEngine's, which
# tools/test.py can run) on the main task's metric (mean over the datasets of the class
# accuracy with the dataset known). Rows: mtl-dshead_* (alpha 0.4 ->
# 0.15), mtl-dshead-grl_* (+ gradient reversal), mtl-uncertainty_*, mtl-pcgrad_*,
# mtl-two-stage_* (dataset task alone for 3 epochs, then joint).
# python tools/ablate.py configs/mtl/mtl-*_hier-cls_*.py --run --work-root work_dirs/ablate_cls
_base_ = [
    '../_base_/models/hier-cls_resnet18-w16.py', '../_base_/datasets/synthetic_cls.py',
    '../_base_/schedules/sgd_10e_cosine.py', '../_base_/runtime/cls_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
model = dict(alpha=0.0)
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='mean/accuracy', rule='greater'))
early_stopping = dict(type='TestableEarlyStoppingHook', monitor='mean/accuracy', rule='greater',
                      patience=4, min_delta=0.1)
custom_hooks = _base_.custom_hooks + [early_stopping]  # head isolation, early stopping
