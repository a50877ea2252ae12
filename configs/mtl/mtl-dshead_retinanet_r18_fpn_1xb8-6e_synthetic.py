# Ablation row "+ dataset head": a DatasetClsHead on the pooled FPN levels predicts the source
# of each image (cross-entropy on group_id); weight 0.4 for two epochs, then 0.15 (the
# seed's recipe), driven by CurriculumLearningHook. Loss keys: aux.loss_dataset_cls.
_base_ = ['./mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py']
model = dict(aux_head=_base_.dataset_cls_head)
# hooks run by priority: head isolation (VERY_HIGH), this (HIGH), early stopping (LOWEST)
custom_hooks = _base_.custom_hooks + [
    dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.aux_head.loss_weight', milestones=[2], values=[0.4, 0.15])])
]
