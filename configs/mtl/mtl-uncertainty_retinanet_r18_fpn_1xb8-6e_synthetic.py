# Ablation row "+ uncertainty weighting" (Kendall et al. 2018): the tasks are the loss-key
# prefixes person / animal / aux; each gets a learnable log-variance s, total
# sum(exp(-s) L + s). The log-variances are excluded from weight decay.
_base_ = ['./mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py']
model = dict(aux_head=dict(_base_.dataset_cls_head, loss_weight=1.0),
             loss_weighting=dict(type='UncertaintyWeighting'))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'loss_weighting': dict(decay_mult=0.)}))
