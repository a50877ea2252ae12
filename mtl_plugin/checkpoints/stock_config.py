"""What a config may hold to load without the plugin: types, losses, data and runtime.

Used by :mod:`mtl_plugin.checkpoints.export`. A type is the plugin's when the class
registered under its name is defined in ``mtl_plugin``; such types cannot appear in an
exported config. Losses are turned into their stock parents (``GroupWeightedLoss`` into the
loss it wraps, ``GroupWeightedKeypointMSELoss`` into ``KeypointMSELoss``...); anything else
of the plugin's is refused with an error naming it.
"""
import copy
import importlib
import inspect
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import mmengine.registry as root_registries
from mmengine.config import ConfigDict
from mmengine.registry import HOOKS, MODELS, VISUALIZERS, Registry

__all__ = ['PluginTypeError', 'plugin_type_names', 'plugin_types_in', 'to_plain',
           'stock_module_cfg', 'stock_display_cfg', 'eval_data_cfgs', 'runtime_cfg']

#: top-level config keys carried over to an exported config (when free of plugin types)
RUNTIME_KEYS = ('default_scope', 'default_hooks', 'env_cfg', 'log_processor', 'log_level',
                'visualizer', 'vis_backends', 'backend_args', 'launcher')
#: keys a MultiSourceDataset source holds that a stock dataset does not take
SOURCE_KEYS = ('group_name', 'group_id')


class PluginTypeError(TypeError):
    """An exported config would need the plugin (a type of ``mtl_plugin``'s)."""


def _is_ours(obj: Any) -> bool:
    return getattr(obj, '__module__', '').split('.')[0] == 'mtl_plugin'


def plugin_type_names() -> Set[str]:
    """Names registered by the plugin in any of MMEngine's root registries.

    Returns:
        set[str]: E.g. ``{'MultiHeadDetector', 'GroupWeightedLoss', ...}``.
    """
    names: Set[str] = set()
    for registry in vars(root_registries).values():
        if isinstance(registry, Registry):
            names.update(n for n, obj in registry.module_dict.items() if _is_ours(obj))
    return names


def _bare(type_name: Any) -> Any:
    return type_name.split('.')[-1] if isinstance(type_name, str) else type_name


def plugin_types_in(cfg: Any, path: str = '', names: Optional[Set[str]] = None) -> List[str]:
    """Every plugin type in a (nested) config.

    Args:
        cfg (Any): A config (dicts, lists, values).
        path (str): Where ``cfg`` is, for the messages. Defaults to '' (the root).
        names (set[str], optional): The plugin's type names. Defaults to
            :func:`plugin_type_names`.

    Returns:
        list[str]: ``'<path>: <type>'``, e.g. ``"model.heads.person.aux: 'DatasetClsHead'"``.
    """
    names = plugin_type_names() if names is None else names
    found: List[str] = []
    if isinstance(cfg, Mapping):
        if _bare(cfg.get('type')) in names or _is_ours(cfg.get('type')):
            found.append(f'{path or "<root>"}: {cfg["type"]!r}')
        for key, value in cfg.items():
            found += plugin_types_in(value, f'{path}.{key}' if path else str(key), names)
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            found += plugin_types_in(value, f'{path}[{i}]', names)
    return found


def to_plain(obj: Any) -> Any:
    """Plain Python values (dict / list / str / numbers) of configs and numpy values, as
    torch's ``weights_only`` loading and a config dump take them.

    Args:
        obj (Any): A (nested) ``ConfigDict`` / mapping / sequence / numpy value.

    Returns:
        Any: The same structure of plain values (numpy arrays as lists).
    """
    if isinstance(obj, (ConfigDict, Mapping)):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    if hasattr(obj, 'tolist') and type(obj).__module__ == 'numpy':
        return obj.tolist()
    return obj


def _resolve(obj: Any) -> Any:
    """The class behind a lazily registered name (``register_lazy`` of ``models/utils.py``,
    ``visualization/__init__.py``: a builder function, named as the class, that imports
    the module defining it)."""
    if isinstance(obj, type) or not inspect.isfunction(obj) or not _is_ours(obj):
        return obj
    found = inspect.getclosurevars(obj)
    module = found.nonlocals.get('module', found.globals.get('_MODULE', obj.__module__))
    resolved = getattr(importlib.import_module(module), obj.__name__, obj)
    return resolved if isinstance(resolved, type) else obj


def _stock_registries(kind: str) -> List[Tuple[str, Registry]]:
    """``(scope, registry)`` of mmdet's and mmpose's registry ``kind`` (``'MODELS'``...)."""
    found = []
    for scope in ('mmdet', 'mmpose'):
        try:
            found.append((scope, getattr(importlib.import_module(f'{scope}.registry'), kind)))
        except ImportError:  # pragma: no cover - both are dependencies of the plugin
            continue
    return found


def _stock_parent(cls: type, where: str, kind: str = 'MODELS') -> str:
    """The registered name (``'<scope>.<name>'``) of ``cls``'s first stock base class."""
    registries = _stock_registries(kind)
    for base in cls.__mro__[1:]:
        if _is_ours(base):
            continue
        for scope, registry in registries:
            for name, obj in registry.module_dict.items():
                if obj is base:
                    return f'{scope}.{name}'
    raise PluginTypeError(f'{where}: {cls.__name__} is the plugin\'s and has no stock '
                          'parent class; an exported config cannot hold it (replace it '
                          'with a stock module before exporting)')


def _as_parent(cfg: Mapping, cls: type, where: str, registry: Registry, kind: str) -> dict:
    """``cfg`` as the stock parent of ``cls``, without the arguments it does not take."""
    parent = _stock_parent(cls, where, kind)
    theirs = inspect.signature(registry.get(parent).__init__).parameters
    ours = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in theirs.values()):  # drop only our own args
        keep = [k for k in cfg if k in theirs or k not in ours]
    else:
        keep = [k for k in cfg if k in theirs]
    return {k: cfg[k] for k in keep if k != 'type'} | dict(type=parent)


def stock_module_cfg(cfg: Any, where: str) -> Any:
    """``cfg`` with every plugin loss turned into its stock parent (recursively).

    ``GroupWeightedLoss`` becomes the loss it wraps; a subclass of a stock loss
    (``GroupWeightedKeypointMSELoss``) becomes that loss, without the arguments the
    parent does not take (``group_id_weight``, ``normalize``). The group weights only
    scale the loss, so predictions do not change.

    Args:
        cfg (Any): A module config (or a list / value inside one).
        where (str): Its path in the config, for the errors.

    Returns:
        Any: The config with stock types only.

    Raises:
        PluginTypeError: A plugin type with no stock parent, or not a loss.
    """
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(stock_module_cfg(v, f'{where}[{i}]') for i, v in enumerate(cfg))
    if not isinstance(cfg, Mapping):
        return cfg
    cfg = {k: stock_module_cfg(v, f'{where}.{k}') for k, v in cfg.items()}
    kind = _bare(cfg.get('type'))
    obj = _resolve(MODELS.get(kind)) if isinstance(kind, str) else None
    if obj is None or not _is_ours(obj):
        return cfg
    if kind == 'GroupWeightedLoss':
        return stock_module_cfg(copy.deepcopy(cfg['loss']), f'{where}.loss')
    if not isinstance(obj, type) or 'Loss' not in kind:
        raise PluginTypeError(f'{where}: type {cfg["type"]!r} is the plugin\'s; only its '
                              'losses have stock equivalents (export a head built from '
                              'stock mmdet / mmpose modules)')
    return _as_parent(cfg, obj, where, MODELS, 'MODELS')


def stock_display_cfg(cfg: Any, where: str, registry: Registry, kind: str) -> Any:
    """A visualizer / hook config of the plugin's as its stock parent (they only draw or
    log), None when it has none; a stock one as it is.

    Args:
        cfg (Any): The visualizer / hook config.
        where (str): Its path in the config.
        registry (Registry): MMEngine's root ``VISUALIZERS`` / ``HOOKS``.
        kind (str): The registry's name in mmdet / mmpose (``'VISUALIZERS'``...).

    Returns:
        Any: The stock config, or None.
    """
    name = _bare(cfg.get('type')) if isinstance(cfg, Mapping) else None
    obj = _resolve(registry.get(name)) if isinstance(name, str) else None
    if obj is None or not _is_ours(obj):
        return None if plugin_types_in(cfg) else cfg
    try:
        return _as_parent(cfg, obj, where, registry, kind)
    except PluginTypeError:
        return None


def _source_of(dataset: Mapping, groups: Sequence[str],
               head: str) -> Tuple[Optional[str], Dict[str, Any]]:
    """``(group, stock dataset config)`` of the (first) source of one of ``groups``."""
    if _bare(dataset.get('type')) != 'MultiSourceDataset':
        return None, dict(dataset)  # a plain dataset already
    names = []
    for src in dataset.get('datasets') or []:
        inner = src['dataset'] if 'type' not in src and 'dataset' in src else src
        name = src.get('group_name')
        names.append(name)
        if name in groups:
            out = {k: v for k, v in dict(inner).items() if k not in SOURCE_KEYS}
            if out.get('pipeline') is None and dataset.get('pipeline') is not None:
                out['pipeline'] = dataset['pipeline']  # shared by the sources
            return name, out
    raise KeyError(f'test_dataloader.dataset has no source of head "{head}" (its groups '
                   f'{list(groups)}); the sources are {names}')


def _evaluator_of(evaluator: Any, group: Optional[str]) -> Any:
    """The group's metric of a ``GroupedMetric``, or a stock evaluator as it is."""
    if evaluator is None:
        return None
    if isinstance(evaluator, Mapping) and _bare(evaluator.get('type')) == 'GroupedMetric':
        metrics = evaluator.get('metrics') or {}
        return copy.deepcopy(metrics.get(group)) if isinstance(metrics, Mapping) else None
    return None if plugin_types_in(evaluator) else copy.deepcopy(evaluator)


def eval_data_cfgs(cfg: Mapping, groups: Sequence[str], head: str,
                   classes: Optional[Sequence[str]]) -> Dict[str, Any]:
    """``test_dataloader`` / ``test_evaluator`` (and the same for val) of one head.

    Args:
        cfg (Mapping): The multi-head config.
        groups (Sequence[str]): The head's groups.
        head (str): The head's name (for errors).
        classes (Sequence[str], optional): Set as the dataset's ``metainfo.classes``
            (detection); None keeps the source's metainfo (pose).

    Returns:
        dict: Top-level config entries.
    """
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    if not loader or 'dataset' not in loader:
        raise KeyError('the config has no test_dataloader (or val_dataloader) whose '
                       'pipeline the exported config could use; add one')
    loader = to_plain(loader)
    group, source = _source_of(loader['dataset'], groups, head)
    if classes is not None:
        source['metainfo'] = dict(source.get('metainfo') or {}, classes=list(classes))
    loader['dataset'] = source
    evaluator = _evaluator_of(to_plain(cfg.get('test_evaluator') or cfg.get('val_evaluator')),
                              group)
    out = dict(test_dataloader=loader, val_dataloader=copy.deepcopy(loader),
               test_cfg=dict(type='TestLoop'), val_cfg=dict(type='ValLoop'))
    if source.get('pipeline') is not None:  # as stock configs have it
        out['test_pipeline'] = copy.deepcopy(source['pipeline'])
    if 'data_mode' in cfg:  # MMPoseInferencer reads it
        out['data_mode'] = cfg['data_mode']
    if 'dataset_type' in cfg:  # MMPoseInferencer: which default detector
        out['dataset_type'] = _bare(source.get('type'))
    if evaluator is not None:
        out.update(test_evaluator=evaluator, val_evaluator=copy.deepcopy(evaluator))
    return out


def runtime_cfg(cfg: Mapping) -> Dict[str, Any]:
    """The runtime entries of ``cfg`` that load without the plugin: the plugin's
    visualizer and hooks become their stock parents (or are left out).

    Args:
        cfg (Mapping): The multi-head config.

    Returns:
        dict: Top-level entries (``default_scope``, ``default_hooks``, ``visualizer``...).
    """
    names = plugin_type_names()
    out: Dict[str, Any] = {}
    for key in RUNTIME_KEYS:
        if key not in cfg:
            continue
        value = to_plain(cfg[key])
        if key == 'default_hooks' and isinstance(value, Mapping):
            value = {k: stock_display_cfg(v, f'default_hooks.{k}', HOOKS, 'HOOKS')
                     for k, v in value.items()}
            value = {k: v for k, v in value.items() if v is not None}
        elif key == 'visualizer':
            value = stock_display_cfg(value, key, VISUALIZERS, 'VISUALIZERS')
        if value is not None and not plugin_types_in(value, names=names):
            out[key] = value
    hooks = [stock_display_cfg(h, f'custom_hooks[{i}]', HOOKS, 'HOOKS')
             for i, h in enumerate(to_plain(cfg.get('custom_hooks') or []))]
    if any(h is not None for h in hooks):
        out['custom_hooks'] = [h for h in hooks if h is not None]
    return out
