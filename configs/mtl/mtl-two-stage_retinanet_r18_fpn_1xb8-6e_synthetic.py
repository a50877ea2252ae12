# Ablation row "two-stage schedule": epochs 0-1 train the shared features on the dataset task
# alone (fine tasks weighted 0), then joint fine-tuning (fine tasks 1, dataset task 0.15).
# ScheduledWeighting reads the epoch from MMEngine's message hub; the weights are logged
# every iteration as weight.<task>.
_base_ = ['./mtl-baseline_retinanet_r18_fpn_1xb8-6e_synthetic.py']
model = dict(
    aux_head=dict(_base_.dataset_cls_head, loss_weight=1.0),
    loss_weighting=dict(type='ScheduledWeighting', by='epoch', schedules=dict(
        person=dict(milestones=[2], values=[0.0, 1.0]),
        animal=dict(milestones=[2], values=[0.0, 1.0]),
        aux=dict(milestones=[2], values=[1.0, 0.15]))))
