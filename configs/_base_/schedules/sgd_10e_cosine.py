# SGD 0.05 with cosine annealing over 10 epochs, validated every epoch (synthetic classifier).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, eta_min=1e-4)]
randomness = dict(seed=0)
