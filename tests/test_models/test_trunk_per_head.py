"""trunk_per_head (issue 14): one backbone pass per head's sub-batch; with frozen BN the
same gradient-surgery update as the whole-batch pass (to float rounding)."""
import copy

import torch
from mmengine.optim import build_optim_wrapper
from tiny_models import GROUP_CLASSES, backbone_neck, batch, build_detector

import mtl_plugin  # noqa: F401  (registers the models)


def _model(per_head):
    parts = copy.deepcopy(backbone_neck())
    parts['backbone'] = dict(parts['backbone'], norm_eval=True)  # frozen BN statistics
    model = build_detector(**parts, head_classes=GROUP_CLASSES, trunk_per_head=per_head,
                           aux_head=dict(type='DatasetClsHead', in_channels=16, num_groups=2))
    model.train()
    return model


def test_one_trunk_pass_per_head_and_the_same_surgery_update():
    data = batch(['person', 'animal', 'person', 'animal'], seed=5)
    params = {}
    for per_head in (False, True):
        model = _model(per_head)
        sizes = []
        model.backbone.conv1.register_forward_hook(lambda m, a, o: sizes.append(a[0].shape[0]))
        wrapper = build_optim_wrapper(model, dict(type='GradSurgeryOptimWrapper',
                                                  optimizer=dict(type='SGD', lr=0.1),
                                                  aggregator=dict(type='PCGrad')))
        model.train_step(copy.deepcopy(data), wrapper)
        assert sizes == ([2, 2] if per_head else [4])  # person's and animal's sub-batches
        params[per_head] = {k: v.detach().clone() for k, v in model.named_parameters()}
    for key, value in params[False].items():
        assert torch.allclose(value, params[True][key], rtol=1e-4, atol=1e-6), key


def test_train_mode_bn_is_said():
    import warnings
    parts = copy.deepcopy(backbone_neck())
    parts['backbone'] = dict(parts['backbone'], norm_eval=False)  # batch norm in train mode
    model = build_detector(**parts, head_classes=GROUP_CLASSES, trunk_per_head=True)
    model.train()
    data = model.data_preprocessor(batch(['person', 'animal'], seed=1), True)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        model.loss(data['inputs'], data['data_samples'])
    assert any('own statistics' in str(w.message) for w in seen)
