"""``GroupBasedAugmentation``: a different transform branch per group."""
import copy
from typing import Callable, Dict, List, Mapping, Optional, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose
from mmengine.registry import TRANSFORMS

DEFAULT = 'default'


@TRANSFORMS.register_module()
class GroupBasedAugmentation(BaseTransform):
    """Run the transform branch of the sample's group (e.g. stronger augmentation for a
    small or hard dataset).

    Each branch is a list of transform configs, built into an ``mmengine.dataset.Compose``
    from the current default scope's registry, so mmdet and mmpose transforms both work::

        dict(type='GroupBasedAugmentation', transforms={
            'animal': [dict(type='RandomFlip', prob=0.5), dict(type='PhotoMetricDistortion')],
            'default': [dict(type='RandomFlip', prob=0.5)]})

    The branch is looked up by ``results['group_id']`` (int keys), then by
    ``results['group_name']`` (str keys), then ``'default'`` (a reserved key: a group
    named 'default' can only be addressed by its id). ``MultiSourceDataset`` puts both
    group keys into ``results`` before the first transform.

    Required Keys:

    - group_id and/or group_name
    - the keys required by the selected branch

    Modified Keys:

    - those modified by the selected branch

    Added Keys:

    - those added by the selected branch

    Args:
        transforms (dict): Group id (int), group name (str) or ``'default'`` -> list of
            transform configs (or callables). An empty list leaves the sample unchanged.
    """

    def __init__(self, transforms: Dict[Union[int, str], List[Union[dict, Callable]]]) -> None:
        if not isinstance(transforms, Mapping) or not transforms:
            raise TypeError('GroupBasedAugmentation needs a non-empty dict {group id | group '
                            "name | 'default': [transform configs]}, but got "
                            f'{transforms!r}')
        self._cfg = copy.deepcopy(dict(transforms))
        self.branches: Dict[Union[int, str], Compose] = {}
        for key, branch in transforms.items():
            if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer, str)):
                raise TypeError('GroupBasedAugmentation: keys must be group ids (int), group '
                                f"names (str) or 'default', but got {key!r}")
            if not isinstance(branch, (list, tuple)) or not all(
                    isinstance(t, dict) or callable(t) for t in branch):
                raise TypeError(f'GroupBasedAugmentation: transforms[{key!r}] must be a list of '
                                f'transform configs (dicts), but got {branch!r}')
            key = key if isinstance(key, str) else int(key)
            if key in self.branches:
                raise ValueError(f'GroupBasedAugmentation: key {key!r} appears twice in '
                                 f'transforms {list(transforms)!r}')
            self.branches[key] = Compose(copy.deepcopy(list(branch)))

    def select(self, results: dict) -> Optional[Union[int, str]]:
        """Key of the branch for ``results`` (None if none applies).

        Args:
            results (dict): The sample, with ``group_id`` and/or ``group_name``.

        Returns:
            int | str | None: The branch key.
        """
        group_id, group_name = results.get('group_id'), results.get('group_name')
        if group_id is not None and not isinstance(group_id, bool) and \
                int(group_id) in self.branches:
            return int(group_id)
        if isinstance(group_name, str) and group_name != DEFAULT and group_name in self.branches:
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
