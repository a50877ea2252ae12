# Baseline: one stock RetinaNet over the union label space of the two generated sources
# (labels shifted by MultiSourceDataset(label_space='unified'); a class a source does not
# annotate counts as background there). Evaluated per group in each group's label space.
_base_ = [
    '../_base_/models/retinanet_r18_fpn.py', '../_base_/datasets/synthetic_det.py',
    '../_base_/schedules/adamw_4e.py', '../_base_/runtime/det_runtime.py'
]
model = dict(backbone=dict(frozen_stages=-1, norm_eval=False), bbox_head=dict(num_classes=3))
train_dataloader = dict(dataset=dict(label_space='unified'))
val_dataloader = dict(dataset=dict(label_space='unified'))
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=4, max_keep_ckpts=1))
log_processor = dict(window_size=5)
