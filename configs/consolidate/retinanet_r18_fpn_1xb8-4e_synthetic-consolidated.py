# Retrain after consolidation (train -> consolidate -> retrain): one stock RetinaNet over all
# classes, trained on the consolidated files that tools/consolidate.py wrote:
#   python tools/train.py configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py \
#       --work-dir work_dirs/mh
#   python tools/consolidate.py configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py \
#       work_dirs/mh/epoch_4.pth --out-dir data/synthetic/consolidated
#   python tools/train.py configs/consolidate/retinanet_r18_fpn_1xb8-4e_synthetic-consolidated.py
# Every source now annotates every class (pseudo boxes); uncertain boxes are ignore regions
# (iscrowd=1 -> ignore_flag=1), which the assigner skips only with ignore_iof_thr > 0.
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
consolidated = 'consolidated/'
classes = ('person', 'cat', 'bird')
model = dict(train_cfg=dict(assigner=dict(ignore_iof_thr=0.5)))
train_dataloader = dict(dataset=dict(datasets=[
    dict(type='CocoDataset', group_name=name, data_root={{_base_.data_root}},
         ann_file=f'{consolidated}{name}_consolidated.json',
         data_prefix=dict(img=f'images/{name}/'), metainfo=dict(classes=classes),
         filter_cfg=dict(filter_empty_gt=True, min_size=4),
         pipeline={{_base_.train_pipeline}}) for name in ('person', 'animal')]))
