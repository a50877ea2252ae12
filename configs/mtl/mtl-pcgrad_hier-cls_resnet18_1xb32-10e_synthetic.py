# Ablation row "+ PCGrad": per-task gradients (person / animal / dataset) on the shared
# backbone are de-conflicted by torchjd's PCGrad; the heads keep their own gradients.
_base_ = ['./mtl-baseline_hier-cls_resnet18_1xb32-10e_synthetic.py']
model = dict(alpha=0.4)  # + dataset head, as mtl-dshead_*
optim_wrapper = dict(_delete_=True, type='GradSurgeryOptimWrapper',
                     aggregator=dict(type='PCGrad'),
                     optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(param='model.alpha', milestones=[5],
                                                        values=[0.4, 0.15])])
]
