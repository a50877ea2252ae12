# Ablation row "+ dataset head": loss (1 - alpha) class + alpha dataset, alpha 0.4 for five
# epochs then 0.15 (CurriculumLearningHook drives model.alpha).
_base_ = ['./mtl-baseline_hier-cls_resnet18_1xb32-10e_synthetic.py']
model = dict(alpha=0.4)
custom_hooks = [
    dict(type='HeadIsolationHook'),
    dict(type='CurriculumLearningHook', schedules=[dict(param='model.alpha', milestones=[5],
                                                        values=[0.4, 0.15])]),
    {{_base_.early_stopping}},
]
