# A stock RetinaNet trained on the generated "animal" source only (a GroupRoutedEnsemble member).
_base_ = ['./retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
model = dict(bbox_head=dict(num_classes=2))
train_dataloader = dict(dataset=dict(
    _delete_=True, type='MultiSourceDataset', datasets=[
        dict(type='CocoDataset', group_name='animal', data_root='data/synthetic/',
             ann_file='annotations/animal_train.json', data_prefix=dict(img='images/animal/'),
             metainfo=dict(classes=('cat', 'bird')), test_mode=False,
             pipeline={{_base_.train_pipeline}},
             filter_cfg=dict(filter_empty_gt=True, min_size=4))]))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='MultiSourceDataset', pipeline={{_base_.test_pipeline}}, datasets=[
        dict(type='CocoDataset', group_name='animal', data_root='data/synthetic/',
             ann_file='annotations/animal_val.json', data_prefix=dict(img='images/animal/'),
             metainfo=dict(classes=('cat', 'bird')), test_mode=True,
             filter_cfg=None)]))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='GroupedMetric', metrics=dict(
    animal=dict(type='CocoMetric', ann_file='data/synthetic/annotations/animal_val.json')))
test_evaluator = val_evaluator
