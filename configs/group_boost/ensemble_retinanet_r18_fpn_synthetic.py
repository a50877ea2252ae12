# Scheme "ensemble": one detector per group (trained with the two member configs), each test
# image predicted by its own group's detector; evaluated per group with GroupedMetric.
#   python tools/train.py configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-person.py
#   python tools/train.py configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-animal.py
#   python tools/test.py configs/group_boost/ensemble_retinanet_r18_fpn_synthetic.py
_base_ = ['../_base_/datasets/synthetic_det.py', '../_base_/runtime/det_runtime.py']
work = 'work_dirs/retinanet_r18_fpn_1xb8-4e_synthetic-'
model = dict(
    type='GroupRoutedEnsemble',
    models=dict(
        person=dict(config='configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-person.py',
                    checkpoint=work + 'person/epoch_4.pth'),
        animal=dict(config='configs/demo/retinanet_r18_fpn_1xb8-4e_synthetic-animal.py',
                    checkpoint=work + 'animal/epoch_4.pth')))
test_cfg = dict(type='TestLoop')
val_cfg = dict(type='ValLoop')
train_dataloader = None  # inference only
