# Person (COCO) + animal (AP-10K, 54 species) with one RetinaNet head per dataset on a shared
# ResNet-18 + FPN (random init, 320 px): the real-sample layout of a dual-head detector.
_base_ = [
    '../_base_/models/multihead_retinanet_r18_fpn.py',
    '../_base_/datasets/real_person_animal_det.py', '../_base_/schedules/sgd_1e.py',
    '../_base_/runtime/det_runtime.py', '../_base_/runtime/multihead_runtime.py'
]
model = dict(heads=dict(animal=dict(num_classes=54)))  # AP-10K: 54 species
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
