# Ablation row "+ PCGrad" (Yu et al. 2020): per-task gradients (person / animal / aux) on the
# shared parameters (those reached by >= 2 tasks: backbone, neck) are projected off each
# other's conflicting directions by torchjd's PCGrad; each head keeps its own gradient.
_base_ = ['./mtl-dshead_retinanet_r18_fpn_1xb8-6e_synthetic.py']
optim_wrapper = dict(_delete_=True, type='GradSurgeryOptimWrapper',
                     aggregator=dict(type='PCGrad'),
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10))
