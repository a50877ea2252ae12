# AdamW 1e-3, gradient clipping, 4 epochs, validated after the last one (synthetic detection).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10))
param_scheduler = []
randomness = dict(seed=0)
