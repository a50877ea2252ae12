# Adam 5e-4, two epochs, validated after the last one (the group_boost pose study).
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = []
randomness = dict(seed=0)
