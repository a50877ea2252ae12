# Ablation row "+ PCGrad" (Yu et al. 2020): per-task gradients (person / animal / aux) on the
# shared parameters (those reached by >= 2 tasks: backbone, neck) are projected off each
# other's conflicting directions by torchjd's PCGrad; each head keeps its own gradient.
_base_ = ['./mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py']
model = dict(aux_head=_base_.dataset_cls_head)  # + dataset head, as mtl-dshead_*
optim_wrapper = dict(_delete_=True, type='GradSurgeryOptimWrapper',
                     aggregator=dict(type='PCGrad'),
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10))
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.aux_head.loss_weight', milestones=[2], values=[0.4, 0.15])])
]
