# Scheme 6, data balancing: animal images repeated 2.5x, person images under-sampled to 80%.
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
train_dataloader = dict(dataset=dict(_delete_=True, type='GroupBalancedDataset',
                                     oversample={1: 2.5}, undersample={0: 0.8}, seed=0,
                                     dataset={{_base_.train_dataloader.dataset}}))
