# Ablation row "+ dataset head with gradient reversal" (DANN): the shared features receive
# -lambda times the dataset head's gradient, lambda = 2 / (1 + exp(-10 p)) - 1 over training
# (p = progress), so they become dataset-invariant instead of dataset-discriminative.
_base_ = ['./mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py']
model = dict(aux_head=dict(_base_.dataset_cls_head, gradient_reversal=True, grl_lambda=0.0))
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[
        dict(param='model.aux_head.loss_weight', milestones=[2], values=[0.4, 0.15]),
        dict(param='model.aux_head.grl_lambda', type='dann', gamma=10.0, by_epoch=False)])
]
