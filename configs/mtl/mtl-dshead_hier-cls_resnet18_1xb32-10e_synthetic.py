# Ablation row "+ dataset head": loss (1 - alpha) class + alpha dataset, alpha 0.4 for five
# epochs then 0.15 (CurriculumLearningHook drives model.alpha).
_base_ = ['./mtl-baseline_hier-cls_resnet18_1xb32-10e_synthetic.py']
model = dict(alpha=0.4)
# hooks run by priority: head isolation (VERY_HIGH), this (HIGH), early stopping (LOWEST)
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(param='model.alpha', milestones=[5],
                                                        values=[0.4, 0.15])])
]
