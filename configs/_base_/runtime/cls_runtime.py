# HierarchicalClassifier configs: the plugin imported, mmdet's registry scope (its ResNet).
custom_imports = dict(imports=['mtl_plugin'], allow_failed_imports=False)
default_scope = 'mmdet'
