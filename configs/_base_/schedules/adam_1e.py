# Adam 5e-4, one epoch, validated after it (mmpose top-down models).
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = []
randomness = dict(seed=0)
