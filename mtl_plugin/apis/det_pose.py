"""Detector -> pose, each box routed by its predicted class to its dataset's pose head."""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.registry import DefaultScope
from mmpose.structures import PoseDataSample
from torch import nn

from .pose import inference_topdown_routed

Route = Tuple[str, str]  # ('group_name' | 'head', name)


def det_class_groups(det_model: nn.Module) -> Tuple[Tuple[str, ...], Dict[str, List[str]]]:
    """A detector's class names (label order) and, per class, the groups that annotate it.

    Args:
        det_model (nn.Module): An mmdet detector; a :class:`MultiHeadDetector` gives its
            label space (head -> classes), a stock one only ``dataset_meta['classes']``.

    Returns:
        tuple: ``classes`` (its labels' names) and ``{class: [group, ...]}``.
    """
    meta = getattr(det_model, 'dataset_meta', None) or {}
    space = getattr(det_model, 'label_space', None)
    classes = tuple(meta.get('classes') or (space.unified_classes if space else ()))
    if not classes:
        raise ValueError('the detector has no class names: load it with mmdet\'s '
                         'init_detector (dataset_meta from the checkpoint)')
    groups: Dict[str, List[str]] = {c: [] for c in classes}
    if space is not None:
        for group in space.group_classes:
            for name in space.unified_names(group):
                groups.setdefault(name, []).append(group)
    return classes, groups


def _pose_targets(pose_model: nn.Module) -> Tuple[List[str], List[str]]:
    """The pose model's groups (from its checkpoint / dataset meta) and heads."""
    groups = list(pose_model.groups) if getattr(pose_model, 'groups', None) else []
    meta_groups = (pose_model.dataset_meta or {}).get('group_metainfo') or {}
    groups += [g for g in meta_groups if g not in groups]
    return groups, list(pose_model.heads)


def resolve_class_routes(classes: Sequence[str], class_groups: Mapping[str, Sequence[str]],
                         pose_model: nn.Module,
                         class_to_group: Optional[Mapping[str, Optional[str]]] = None
                         ) -> Dict[str, Optional[Route]]:
    """Where each detector class goes: a pose group (or head), or None (no pose).

    A class goes to ``class_to_group[class]`` when given (a pose group or head name;
    None: skip the class), else to the one pose group among the detector groups that
    annotate it (a detector trained on COCO + AP-10K: ``'person'`` -> the ``person``
    group, every AP-10K species -> ``animal``), else to the one pose head of that name.

    Raises:
        ValueError: ``class_to_group`` names a class the detector lacks or a target the
            pose model lacks, or a class routes to no pose group (the message lists the
            classes, groups and heads to choose from).
    """
    explicit = dict(class_to_group or {})
    groups, heads = _pose_targets(pose_model)
    unknown = [c for c in explicit if c not in classes]
    if unknown:
        raise ValueError(f'class_to_group names classes {unknown} that the detector does not '
                         f'predict; its classes: {list(classes)}')
    bad = {c: t for c, t in explicit.items() if t is not None and t not in groups + heads}
    if bad:
        raise ValueError(f'class_to_group routes {bad} to no pose head; pose groups: {groups}'
                         f', heads: {heads}')
    routes: Dict[str, Optional[Route]] = {}
    missing = []
    for name in classes:
        target = explicit[name] if name in explicit else None
        if name not in explicit:
            annotated = class_groups.get(name, ())
            # a pose group of that name, else (a model that met no groups) a head
            found = [g for g in annotated if g in groups] or [g for g in annotated if g in heads]
            target = found[0] if len(found) == 1 else None
            if target is None:
                missing.append(name)
        if target is not None:
            routes[name] = ('group_name', target) if target in groups else ('head', target)
        else:
            routes[name] = None
    if missing:
        raise ValueError(f'detector classes {missing[:10]}{"..." if len(missing) > 10 else ""} '
                         f'route to no pose group (pose groups: {groups}, heads: {heads}): '
                         'give class_to_group={<class>: <group or head>, ...}, None to skip '
                         'a class')
    return routes


def pose_from_detections(pose_model: nn.Module, img: Union[np.ndarray, str],
                         det_sample, classes: Sequence[str],
                         routes: Mapping[str, Optional[Route]],
                         score_thr: float = 0.3) -> List[PoseDataSample]:
    """Keypoints of each detected box from the pose head its class routes to.

    Args:
        pose_model (nn.Module): A :class:`MultiHeadPoseEstimator` (mmpose's ``init_model``).
        img (np.ndarray | str): The image the detector saw (BGR array or path).
        det_sample (DetDataSample): The detector's prediction: ``pred_instances`` with
            ``bboxes`` (N, 4) xyxy, ``labels`` (N,) into ``classes``, ``scores`` (N,).
        classes (Sequence[str]): Names of the detector's labels.
        routes (Mapping): Class -> route, from :func:`resolve_class_routes`.
        score_thr (float): Boxes scored below are dropped. Defaults to 0.3.

    Returns:
        list[PoseDataSample]: One per kept box (detector order), ``pred_instances`` with
        the box's head's keypoints (1, K, 2), ``labels`` (1,) its detector label and
        ``bbox_scores`` its score; metainfo ``group_name`` / ``head`` as routed.
    """
    pred = det_sample.pred_instances
    boxes, labels, scores = (np.asarray(pred[k].detach().cpu() if hasattr(pred[k], 'detach')
                                        else pred[k]) for k in ('bboxes', 'labels', 'scores'))
    keep = [i for i in range(len(labels)) if scores[i] >= score_thr
            and routes.get(classes[int(labels[i])]) is not None]
    if not keep:
        return []
    route = [routes[classes[int(labels[i])]] for i in keep]
    samples = inference_topdown_routed(
        pose_model, img, boxes[keep],
        groups=[name if key == 'group_name' else None for key, name in route],
        heads=[name if key == 'head' else None for key, name in route],
        bbox_scores=scores[keep])
    for sample, i in zip(samples, keep):
        sample.pred_instances.labels = np.array([int(labels[i])])
    return samples


def inference_det_pose(det_model: nn.Module, pose_model: nn.Module,
                       img: Union[np.ndarray, str],
                       class_to_group: Optional[Mapping[str, Optional[str]]] = None,
                       score_thr: float = 0.3) -> Tuple[List[PoseDataSample], Tuple[str, ...]]:
    """Detect, then estimate each box's keypoints with its class's dataset's pose head.

    The natural top-down pipeline for person + animal pose: a (multi-head) detector's
    boxes, each routed by its predicted class (:func:`resolve_class_routes`) to the
    pose head of that class's dataset, drawn with that dataset's skeleton by
    :class:`GroupPoseLocalVisualizer`'s ``draw_samples``.

    Args:
        det_model (nn.Module): An mmdet detector from ``init_detector``.
        pose_model (nn.Module): A :class:`MultiHeadPoseEstimator` from mmpose's
            ``init_model``.
        img (np.ndarray | str): The image (BGR array) or its path.
        class_to_group (Mapping, optional): Detector class -> pose group or head (None:
            no pose for that class). Defaults to the groups of the detector's label space.
        score_thr (float): Boxes scored below are dropped. Defaults to 0.3.

    Returns:
        tuple: The pose samples (see :func:`pose_from_detections`) and the detector's
        class names (of ``pred_instances.labels``).
    """
    from mmdet.apis import inference_detector
    classes, class_groups = det_class_groups(det_model)
    routes = resolve_class_routes(classes, class_groups, pose_model, class_to_group)
    cfg = getattr(det_model, 'cfg', None)
    # the detector's pipeline is built in its own scope, whatever the current one is
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet') if cfg
                                              is not None else 'mmdet'):
        det_sample = inference_detector(det_model, img)
    return pose_from_detections(pose_model, img, det_sample, classes, routes, score_thr), classes


def det_pose_to_json(samples: Sequence[PoseDataSample], classes: Sequence[str]) -> List[dict]:
    """JSON-ready records of :func:`pose_from_detections`' samples, one per box.

    Returns:
        list[dict]: ``bbox`` [x1, y1, x2, y2], ``bbox_score``, ``label``, ``class_name``,
        ``group`` (the keypoint meta's), ``head``, ``keypoints`` (K x [x, y]) and
        ``keypoint_scores`` (K).
    """
    records = []
    for sample in samples:
        pred = sample.pred_instances
        label = int(pred.labels[0]) if 'labels' in pred else None
        records.append(dict(
            bbox=[float(v) for v in np.asarray(pred.bboxes)[0]],
            bbox_score=float(np.asarray(pred.bbox_scores)[0]), label=label,
            class_name=classes[label] if label is not None else None,
            group=sample.metainfo.get('pred_group'), head=sample.metainfo.get('pred_head'),
            keypoints=np.asarray(pred.keypoints)[0].round(2).tolist(),
            keypoint_scores=np.asarray(pred.keypoint_scores)[0].round(4).tolist()))
    return records
