"""Inference helpers for multi-head pose models (mmpose / mmdet based; imported on use).

``mmpose.apis.init_model`` / ``inference_topdown`` and ``MMPoseInferencer`` work on a
multi-head pose checkpoint as they are (every head runs on each box); these add what they
cannot express: a head per box (:func:`inference_topdown_routed`) and detector boxes routed
by their class to the pose head of that class's dataset (:func:`inference_det_pose`).
"""
from .det_pose import (det_class_groups, det_pose_to_json, inference_det_pose,
                       pose_from_detections, resolve_class_routes)
from .pose import inference_topdown_routed

__all__ = ['inference_topdown_routed', 'inference_det_pose', 'pose_from_detections',
           'resolve_class_routes', 'det_class_groups', 'det_pose_to_json']
