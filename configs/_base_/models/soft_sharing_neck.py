# Snippet, not a runnable config (no model, data or schedule): one FPN neck per task,
# softly tied by an L2 penalty between their parameters (SoftParameterSharing).
#
# `soft_sharing_neck` fits the ResNet-18 / FPN of configs/demo (4 backbone levels,
# 5 outputs of 64 channels). MultiHeadDetector runs each head's copy on that head's
# samples and adds `neck.loss()` ({'soft_sharing.loss_l2': ...}) to its losses (dense heads;
# an aux_head then pools the backbone's features); plain mmdet detectors call `neck(feats)`
# only. Copy the dict, or inherit it:
#
#     _base_ = ['../_base_/models/soft_sharing_neck.py']
#     model = dict(neck={{_base_.soft_sharing_neck}})
#
# l2_weight: 0 leaves the copies independent, large values approach a shared neck; it is a
# plain float attribute, so CurriculumLearningHook can ramp it
# (param='model.neck.l2_weight'). The task names are the model's group / head names.
soft_sharing_neck = dict(
    type='SoftParameterSharing',
    tasks=['person', 'animal'],
    l2_weight=1e-3,
    branch=dict(type='mmdet.FPN', in_channels=[64, 128, 256, 512], out_channels=64,
                start_level=1, add_extra_convs='on_input', num_outs=5))
