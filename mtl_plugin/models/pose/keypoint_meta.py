"""Keypoint metas of a pose dataset (names, flips, skeleton, colours), kept by the model.

A :class:`MultiHeadPoseEstimator` keeps each group's keypoint meta (the part of an mmpose
dataset's ``metainfo`` that describes its keypoints) so that its checkpoint carries all
that inference and drawing need: ``flip_indices`` for flip test, skeleton and colours for
mmpose's visualizer. The metas travel in the model's extra state as JSON; the encoding here
is exact (arrays keep their dtype, tuples stay tuples, ``keypoint_id2name`` keeps int keys).
"""
import copy
from typing import Any, Dict, Mapping, Optional

import numpy as np

#: the keys of mmpose's ``parse_pose_metainfo`` output that describe the keypoints
POSE_META_KEYS = (
    'dataset_name', 'num_keypoints', 'keypoint_id2name', 'keypoint_name2id',
    'upper_body_ids', 'lower_body_ids', 'flip_indices', 'flip_pairs', 'keypoint_colors',
    'num_skeleton_links', 'skeleton_links', 'skeleton_link_colors',
    'dataset_keypoint_weights', 'sigmas')


def keypoint_meta(meta: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The keypoint part of a dataset's metainfo (a deep copy; empty if it has none).

    Args:
        meta (Mapping, optional): An mmpose dataset's ``metainfo`` (or one group's, from
            ``MultiSourceDataset.metainfo['group_metainfo']``).

    Returns:
        dict: The entries of :data:`POSE_META_KEYS` that ``meta`` has.
    """
    if not meta or 'num_keypoints' not in meta:
        return {}
    return {k: copy.deepcopy(meta[k]) for k in POSE_META_KEYS if k in meta}


def to_json(value: Any) -> Any:
    """Encode a keypoint meta (arrays, tuples, int-keyed dicts) as plain JSON values.

    Args:
        value (Any): A meta or any value in it.

    Returns:
        Any: The same content as lists / dicts / numbers / strings, decodable exactly
        by :func:`from_json`.
    """
    if isinstance(value, np.ndarray):
        return {'__ndarray__': value.tolist(), 'dtype': str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {'__tuple__': [to_json(v) for v in value]}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {k: to_json(v) for k, v in value.items()}
        return {'__items__': [[to_json(k), to_json(v)] for k, v in value.items()]}
    return value


def from_json(value: Any) -> Any:
    """Decode what :func:`to_json` encoded.

    Args:
        value (Any): A JSON value.

    Returns:
        Any: The original meta (``np.ndarray`` with its dtype, tuples, int keys).
    """
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if '__ndarray__' in value:
        return np.asarray(value['__ndarray__'], dtype=value['dtype'])
    if '__tuple__' in value:
        return tuple(from_json(v) for v in value['__tuple__'])
    if '__items__' in value:
        return {from_json(k): from_json(v) for k, v in value['__items__']}
    return {k: from_json(v) for k, v in value.items()}
