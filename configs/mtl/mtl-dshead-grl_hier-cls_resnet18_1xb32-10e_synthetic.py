# Ablation row "+ dataset head with gradient reversal" (DANN): lambda = 2/(1+exp(-10p)) - 1.
_base_ = ['./mtl-baseline_hier-cls_resnet18_1xb32-10e_synthetic.py']
model = dict(alpha=0.4, dataset_head=dict(gradient_reversal=True, grl_lambda=0.0))
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[
        dict(param='model.alpha', milestones=[5], values=[0.4, 0.15]),
        dict(param='model.dataset_head.grl_lambda', type='dann', gamma=10.0, by_epoch=False)])
]
