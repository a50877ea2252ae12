# Ablation row "two-stage schedule": alpha = 1 for three epochs (the dataset task alone trains
# the backbone), then joint fine-tuning with alpha = 0.3.
_base_ = ['./mtl-baseline_hier-cls_resnet18_1xb32-10e_synthetic.py']
model = dict(alpha=1.0)
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(param='model.alpha', milestones=[3],
                                                        values=[1.0, 0.3])])
]
