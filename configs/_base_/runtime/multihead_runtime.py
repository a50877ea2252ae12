# Runtime shared by every model with one head per dataset (MultiHeadDetector,
# MultiHeadPoseEstimator, HierarchicalClassifier). Inherit it next to the task's runtime.
#
# HeadIsolationHook hands the dataset meta to the model before training (heads checked
# against the datasets' groups / classes) and keeps a head bit-identical in steps without any
# of its samples. A config that needs more hooks appends to this list instead of repeating it:
#     custom_hooks = _base_.custom_hooks + [dict(type='CurriculumLearningHook', ...)]
# SaveBestCheckHook fails before training when default_hooks.checkpoint.save_best names a key
# the val evaluator never reports (a stock base's 'coco/bbox_mAP': ours are per group).
custom_hooks = [dict(type='HeadIsolationHook'), dict(type='SaveBestCheckHook')]
# a batch without a dataset's samples leaves that head without gradient (DDP)
find_unused_parameters = True
