# Ablation row "+ uncertainty weighting" over the tasks person / animal / dataset (loss-key
# prefixes); alpha fixed at 0.5 so that the learnt weights alone set the balance.
_base_ = ['./mtl-baseline_hier-cls_resnet18_1xb32-10e_synthetic.py']
model = dict(alpha=0.5, loss_weighting=dict(type='UncertaintyWeighting'))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
