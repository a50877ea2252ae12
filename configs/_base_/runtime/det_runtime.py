# mmdet's default runtime with the plugin imported and prediction drawing off.
_base_ = ['mmdet::_base_/default_runtime.py']
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
default_hooks = dict(visualization=dict(type='DetVisualizationHook', draw=False))
