# Baseline of the detection group_boost study: a stock RetinaNet over the union label space
# of the generated person (group 0) and animal (group 1) sources. RetinaNet already uses a
# focal loss, so the "focal loss" scheme is the pose one (focal heatmap loss).
_base_ = ['../demo/retinanet_r18_fpn_1xb8-4e_synthetic-union.py']
