"""``GroupAwareModel``: give a stock single-head model the group context of its loss.

Group-weighted losses (:class:`GroupWeightedLoss`, :class:`GroupWeightedKeypointMSELoss`,
:class:`GroupWeightedFocalHeatmapLoss`) read the groups of the batch's samples from the
group context (:mod:`mtl_plugin.models.losses.group_context`). Multi-head models set it per
head; a stock mmdet detector or mmpose estimator gets it from this wrapper::

    model = dict(type='GroupAwareModel', model=dict(type='RetinaNet', ...))

The context is set around the model's ``loss()`` only (from the ``data_samples`` it is
called with), so it exists exactly while a loss is computed.
"""
import functools
import types
from typing import Any, Optional, Union

from mmengine.model import BaseModel
from mmengine.registry import MODELS

from .losses.det_losses import check_row_layouts
from .losses.group_context import GroupContextError, group_context

__all__ = ['GroupAwareModel', 'make_group_aware']

_FLAG = '_mtl_group_aware'


def _data_samples(args: tuple, kwargs: dict) -> Any:
    """The ``data_samples`` argument of ``loss(inputs, data_samples)`` (mmdet / mmpose)."""
    for name in ('data_samples', 'batch_data_samples'):
        if name in kwargs:
            return kwargs[name]
    if len(args) >= 2:
        return args[1]
    raise TypeError('GroupAwareModel: loss() was called without data_samples; it expects '
                    'loss(inputs, data_samples) as mmdet detectors and mmpose estimators have')


def make_group_aware(model: BaseModel) -> BaseModel:
    """Set the group context around ``model.loss()``, in place (idempotent).

    The bound ``loss`` is replaced on the instance only, so the model's class, its
    submodules and its checkpoint keys are unchanged (checkpoints load into the stock
    model and back).

    Args:
        model (BaseModel): An MMEngine model whose ``loss(inputs, data_samples)`` computes
            the losses (mmdet ``BaseDetector``, mmpose ``BasePoseEstimator``...).

    Returns:
        BaseModel: ``model``.
    """
    if not isinstance(model, BaseModel) or not callable(getattr(model, 'loss', None)):
        raise TypeError('GroupAwareModel needs an MMEngine model with a loss(inputs, '
                        f'data_samples) method (an mmdet detector, an mmpose estimator), but '
                        f'got {type(model).__name__}')
    if getattr(model, _FLAG, False):
        return model
    stock_loss = model.loss  # bound method of the class (or of a previous wrapper)

    @functools.wraps(stock_loss)
    def loss(self: BaseModel, *args: Any, **kwargs: Any) -> Any:
        data_samples = _data_samples(args, kwargs)
        if data_samples is None:
            raise GroupContextError(f'GroupAwareModel: {type(self).__name__}.loss() got '
                                    'data_samples=None; the group context is built from the '
                                    "samples' metainfo (group_id, group_name, groups)")
        with group_context(data_samples):
            return stock_loss(*args, **kwargs)

    model.loss = types.MethodType(loss, model)
    object.__setattr__(model, _FLAG, True)
    return model


@MODELS.register_module(name='GroupAwareModel')
def GroupAwareModel(model: Union[dict, BaseModel, None] = None,  # noqa: N802 (a config type)
                    model_type: Optional[str] = None, **model_kwargs: Any) -> BaseModel:
    """Build ``model`` and set the group context around its ``loss()``.

    Returns the model itself (not a wrapper module): ``data_preprocessor``,
    ``state_dict`` keys, ``predict`` and ``test_step`` are the stock model's::

        model = dict(type='GroupAwareModel', model=dict(type='TopdownPoseEstimator', ...))

    A config that inherits its model from a ``_base_`` may instead name the stock type and
    keep every other key where it is (they are merged with the base as usual)::

        model = dict(type='GroupAwareModel', model_type='RetinaNet', bbox_head=dict(...))

    Args:
        model (dict | BaseModel, optional): Config of (or) a stock model with
            ``loss(inputs, data_samples)``.
        model_type (str, optional): The stock model's type, built with ``model_kwargs``;
            exclusive with ``model``.
        **model_kwargs: The stock model's arguments (with ``model_type`` only).

    Returns:
        BaseModel: The built model, group-aware.
    """
    if (model is None) == (model_type is None) or (model is not None and model_kwargs):
        raise TypeError("GroupAwareModel takes model=dict(type=...) (or a built model), or "
                        "model_type='<stock type>' with the stock model's arguments beside "
                        f'it; got model={model!r}, model_type={model_type!r}, and '
                        f'{sorted(model_kwargs)}')
    if model is None:
        model = dict(type=model_type, **model_kwargs)
    if isinstance(model, dict):
        model = MODELS.build(model)
    check_row_layouts(model, f'GroupAwareModel({type(model).__name__})')
    return make_group_aware(model)
