# Ablation family (classifier), row 0 "baseline": the fine task only (alpha = 0: the
# dataset head gets no loss). HierarchicalClassifier on generated single-object images of two
# sources; validated every epoch; EarlyStoppingHook on the main task's metric (mean over the
# datasets of the class accuracy with the dataset known). Rows: mtl-dshead_* (alpha 0.4 ->
# 0.15), mtl-dshead-grl_* (+ gradient reversal), mtl-uncertainty_*, mtl-pcgrad_*,
# mtl-two-stage_* (dataset task alone for 3 epochs, then joint).
# python tools/ablate.py configs/mtl/mtl-*_hier-cls_*.py --run --work-root work_dirs/ablate_cls
_base_ = ['../classifier/hier-cls_resnet18_1xb32-10e_synthetic.py']
model = dict(alpha=0.0)
default_hooks = dict(checkpoint=dict(interval=1, save_best='mean/accuracy', rule='greater'))
early_stopping = dict(type='EarlyStoppingHook', monitor='mean/accuracy', rule='greater',
                      patience=4, min_delta=0.1)
custom_hooks = [dict(type='HeadIsolationHook'), early_stopping]
