# One stock RetinaNet (ResNet-18, random init, 320 px) over the union label space of COCO
# persons and AP-10K animals, evaluated per dataset: the foundation's real-data smoke run.
_base_ = [
    '../_base_/models/retinanet_r18_fpn.py', '../_base_/datasets/real_person_animal_det.py',
    '../_base_/schedules/sgd_1e.py', '../_base_/runtime/det_runtime.py'
]
model = dict(bbox_head=dict(num_classes=55))
train_dataloader = dict(dataset=dict(label_space='unified'))
val_dataloader = dict(dataset=dict(label_space='unified'))
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
