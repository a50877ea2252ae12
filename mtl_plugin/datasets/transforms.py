"""``GroupBasedAugmentation``: a different transform branch per group."""
import copy
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose
from mmengine.registry import TRANSFORMS

from ..groups import DEFAULT, Groups, normalize_group_key

__all__ = ['GroupBasedAugmentation', 'check_pipeline_groups']

_OWNER = 'GroupBasedAugmentation'


def check_pipeline_groups(pipeline: Any, groups: Groups) -> None:
    """Call ``check_groups(groups)`` on every transform of a pipeline that has it.

    Walks nested ``Compose``-like ``.transforms`` lists, so that a group-keyed transform
    fails on an unknown group when the dataset is built, before the first iteration.

    Args:
        pipeline (Any): A pipeline (``Compose``) or a transform.
        groups (Groups): The dataset's groups.
    """
    check = getattr(pipeline, 'check_groups', None)
    if callable(check):
        check(groups)
    children = getattr(pipeline, 'transforms', None)
    if isinstance(children, (list, tuple)):
        for child in children:
            check_pipeline_groups(child, groups)


@TRANSFORMS.register_module()
class GroupBasedAugmentation(BaseTransform):
    """Run the transform branch of the sample's group (e.g. stronger augmentation for a
    small or hard dataset).

    Each branch is a list of transform configs, built into an ``mmengine.dataset.Compose``
    from the current default scope's registry, so mmdet and mmpose transforms both work::

        dict(type='GroupBasedAugmentation', transforms={
            'animal': [dict(type='RandomFlip', prob=0.5), dict(type='PhotoMetricDistortion')],
            'default': [dict(type='RandomFlip', prob=0.5)]})

    Keys are read as every group-keyed setting (:mod:`mtl_plugin.groups`): an int or a
    digit string (``'1'``) is a group id, ``'default'`` the branch of the groups not
    listed, any other str a group name. ``MultiSourceDataset`` calls :meth:`check_groups`
    when it is built, so a key that names no group of the dataset is an
    ``UnknownGroupError`` before the first iteration (also with a ``'default'`` branch),
    and puts both group keys into ``results`` before the first transform. The branch is
    then that of the sample's group; unchecked (a pipeline used outside
    ``MultiSourceDataset``), it is looked up by ``results['group_id']`` (id keys), then by
    ``results['group_name']`` (name keys), then ``'default'``.

    Required Keys:

    - group_id and/or group_name
    - the keys required by the selected branch

    Modified Keys:

    - those modified by the selected branch

    Added Keys:

    - those added by the selected branch

    Args:
        transforms (dict): Group id (int or digit str), group name (str) or ``'default'``
            -> list of transform configs (or callables). An empty list leaves the sample
            unchanged.
    """

    def __init__(self, transforms: Dict[Union[int, str], List[Union[dict, Callable]]]) -> None:
        if not isinstance(transforms, Mapping) or not transforms:
            raise TypeError('GroupBasedAugmentation needs a non-empty dict {group id | group '
                            "name | 'default': [transform configs]}, but got "
                            f'{transforms!r}')
        self._cfg = copy.deepcopy(dict(transforms))
        self.branches: Dict[Union[int, str], Compose] = {}
        for raw, branch in transforms.items():
            key = normalize_group_key(raw, 'transforms', _OWNER, allow_default=True)
            if not isinstance(branch, (list, tuple)) or not all(
                    isinstance(t, dict) or callable(t) for t in branch):
                raise TypeError(f'GroupBasedAugmentation: transforms[{raw!r}] must be a list of '
                                f'transform configs (dicts), but got {branch!r}')
            if key in self.branches:
                raise ValueError(f'GroupBasedAugmentation: key {key!r} appears twice in '
                                 f'transforms {list(transforms)!r}')
            self.branches[key] = Compose(copy.deepcopy(list(branch)))
        self._groups: Optional[Groups] = None
        self._branch_of_id: Optional[Dict[int, Union[int, str]]] = None

    def check_groups(self, groups: Groups) -> None:
        """Resolve every key against the dataset's groups (an unknown one is an error).

        Args:
            groups (Groups): The dataset's groups.

        Raises:
            UnknownGroupError: For a key that names no group, even with a 'default' branch.
            ValueError: When two keys (an id and a name) name the same group.
        """
        branch_of_id: Dict[int, Union[int, str]] = {}
        for key in self.branches:
            if key == DEFAULT:
                continue
            gid = groups.resolve(key, 'transforms', _OWNER)
            if gid in branch_of_id:
                raise ValueError(f'GroupBasedAugmentation: transforms[{branch_of_id[gid]!r}] and '
                                 f'transforms[{key!r}] both name group '
                                 f'{groups.name_of(gid)!r} (id {gid}); keep one')
            branch_of_id[gid] = key
        self._groups, self._branch_of_id = groups, branch_of_id

    def select(self, results: dict) -> Optional[Union[int, str]]:
        """Key of the branch for ``results`` (None if none applies).

        Args:
            results (dict): The sample, with ``group_id`` and/or ``group_name``.

        Returns:
            int | str | None: The branch key.
        """
        group_id, group_name = results.get('group_id'), results.get('group_name')
        has_id = group_id is not None and not isinstance(group_id, bool)
        if self._branch_of_id is not None:
            if not has_id and isinstance(group_name, str) and group_name in self._groups.names:
                group_id, has_id = self._groups.id_of(group_name), True
            key = self._branch_of_id.get(int(group_id)) if has_id else None
            if key is not None:
                return key
        else:
            if has_id and int(group_id) in self.branches:
                return int(group_id)
            if isinstance(group_name, str) and group_name != DEFAULT and \
                    group_name in self.branches:
                return group_name
        return DEFAULT if DEFAULT in self.branches else None

    def transform(self, results: dict) -> Optional[dict]:
        """Apply the branch of the sample's group.

        Args:
            results (dict): The sample, with ``group_id`` and/or ``group_name``.

        Returns:
            dict | None: The transformed sample (None if the branch drops it).
        """
        if 'group_id' not in results and 'group_name' not in results:
            raise KeyError('GroupBasedAugmentation: results has neither group_id nor '
                           'group_name; wrap the dataset in MultiSourceDataset, which adds them')
        key = self.select(results)
        if key is None:
            raise KeyError(
                'GroupBasedAugmentation: no branch for group '
                f"(group_id={results.get('group_id')!r}, group_name="
                f"{results.get('group_name')!r}); configured keys: {list(self.branches)!r}. "
                "Add that group or a 'default' branch")
        return self.branches[key](results)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(transforms={self._cfg!r})'
