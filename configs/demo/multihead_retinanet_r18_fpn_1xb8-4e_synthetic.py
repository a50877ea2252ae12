# MultiHeadDetector: shared ResNet-18 + FPN, one RetinaNet head per generated source
# (person: 1 class; animal: cat + bird). Each image trains only its own dataset's head;
# multihead_runtime.py's hook keeps the other head bit-identical in steps it has no sample in.
_base_ = [
    '../_base_/models/multihead_retinanet_r18_fpn.py', '../_base_/datasets/synthetic_det.py',
    '../_base_/schedules/adamw_4e.py', '../_base_/runtime/det_runtime.py',
    '../_base_/runtime/multihead_runtime.py'
]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=4, max_keep_ckpts=1))
log_processor = dict(window_size=5)
