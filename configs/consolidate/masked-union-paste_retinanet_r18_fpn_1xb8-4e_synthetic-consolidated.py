# Student of the consolidation loop (tools/consolidate_loop.py): the teacher's model and
# CrossSourcePaste, trained on the files tools/consolidate.py wrote (every source annotates
# every class now: its own GT plus pseudo boxes; uncertain boxes are ignore regions,
# iscrowd=1, which the assigner skips with ignore_iof_thr > 0). The loop sets
# ``consolidated`` to each round's output folder (--cfg-options consolidated=...).
_base_ = ['./masked-union-paste_retinanet_r18_fpn_1xb8-4e_synthetic.py']
consolidated = 'consolidated/'
model = dict(train_cfg=dict(assigner=dict(ignore_iof_thr=0.5)))
train_dataloader = dict(dataset=dict(datasets=[
    dict(type='CocoDataset', group_name=name, data_root={{_base_.data_root}},
         ann_file=f'{consolidated}{name}_consolidated.json',
         data_prefix=dict(img=f'images/{name}/'), metainfo=dict(classes={{_base_.classes}}),
         filter_cfg=dict(filter_empty_gt=True, min_size=4),
         pipeline={{_base_.paste_pipeline}}) for name in ('person', 'animal')]))
