# Ablation row "+ dataset head": a DatasetClsHead on the pooled FPN levels predicts the source
# of each image (cross-entropy on group_id); weight 0.4 for two epochs, then 0.15 (the
# seed's recipe), driven by CurriculumLearningHook. Loss keys: aux.loss_dataset_cls.
_base_ = ['./mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py']
model = dict(aux_head=dict(type='DatasetClsHead', in_channels=64, num_groups=2,
                           feat_index='all', num_levels=5, hidden_channels=128,
                           loss_weight=0.4))
custom_hooks = [
    dict(type='HeadIsolationHook'),
    dict(type='CurriculumLearningHook', schedules=[dict(
        param='model.aux_head.loss_weight', milestones=[2], values=[0.4, 0.15])]),
    {{_base_.early_stopping}},
]
