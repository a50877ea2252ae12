# Scheme 5, curriculum: the animal loss weight 1.0 -> 1.5 -> 2.0 at epochs 1 and 2
# (the seed's recipe uses epochs 50 and 100).
_base_ = ['./loss-weight_retinanet_r18_fpn_synthetic.py']
model = dict(bbox_head=dict(loss_cls=dict(group_id_weight={1: 1.0}),
                            loss_bbox=dict(group_id_weight={1: 1.0})))
custom_hooks = [
    dict(type='CurriculumLearningHook', schedules=[
        dict(param=f'model.bbox_head.{loss}.group_id_weight.1', milestones=[1, 2],
             values=[1.0, 1.5, 2.0]) for loss in ('loss_cls', 'loss_bbox')]),
]
