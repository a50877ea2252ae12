# mmpose's runtime (PoseVisualizationHook off, log and checkpoint every epoch) with the plugin
# imported. Spelled out instead of inheriting mmpose::_base_/default_runtime.py, whose
# custom_hooks (SyncBuffersHook) would collide with multihead_runtime.py's among bases; the
# mmpose configs that keep mmpose's extras (BadCaseAnalysisHook, backend_args) add them.
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
default_scope = 'mmpose'
default_hooks = dict(
    timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', enable=False))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
# mmpose's PoseLocalVisualizer, drawing each group's samples with that group's keypoint
# colours and skeleton (a plain dataset: as the stock one)
visualizer = dict(type='GroupPoseLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
