# Ablation row "+ PCGrad": per-task gradients (person / animal / dataset) on the shared
# backbone are de-conflicted by torchjd's PCGrad; the heads keep their own gradients.
_base_ = ['./mtl-dshead_hier-cls_resnet18_1xb32-10e_synthetic.py']
optim_wrapper = dict(_delete_=True, type='GradSurgeryOptimWrapper',
                     aggregator=dict(type='PCGrad'),
                     optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
