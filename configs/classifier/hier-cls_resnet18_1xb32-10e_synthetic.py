# Hierarchical classification on generated single-object images (2 sources in their own
# looks): a small ResNet-18, a dataset head and one class head per source. Data:
#   python tools/generate_data.py data/synthetic_cls --classification --num-train 128 --num-val 32
# (measured on CPU, ~25 s: mean/e2e_accuracy 100.0 after 10 epochs; 83.3 with the
# generator's default 32 train images per class)
_base_ = [
    '../_base_/models/hier-cls_resnet18-w16.py', '../_base_/datasets/synthetic_cls.py',
    '../_base_/schedules/sgd_10e_cosine.py', '../_base_/runtime/cls_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=1,
                                     save_best='mean/e2e_accuracy', rule='greater'))
