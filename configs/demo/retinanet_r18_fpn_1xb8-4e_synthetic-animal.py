# A stock RetinaNet trained on the generated "animal" source only (a GroupRoutedEnsemble member).
_base_ = ['./retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
model = dict(bbox_head=dict(num_classes=2))


def _source(split, pipeline, test_mode):
    return dict(type='CocoDataset', group_name='animal', data_root='data/synthetic/',
                ann_file=f'annotations/animal_{split}.json', data_prefix=dict(img='images/animal/'),
                metainfo=dict(classes=('cat', 'bird')), test_mode=test_mode, pipeline=pipeline,
                filter_cfg=None if test_mode else dict(filter_empty_gt=True, min_size=4))


train_dataloader = dict(dataset=dict(
    _delete_=True, type='MultiSourceDataset',
    datasets=[_source('train', {{_base_.train_pipeline}}, False)]))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='MultiSourceDataset',
    datasets=[_source('val', {{_base_.test_pipeline}}, True)]))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='GroupedMetric', metrics=dict(
    animal=dict(type='CocoMetric', ann_file='data/synthetic/annotations/animal_val.json')))
test_evaluator = val_evaluator
