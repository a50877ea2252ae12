"""``GroupPoseLocalVisualizer``: mmpose's visualizer, each sample drawn with its group's
keypoint colours and skeleton."""
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Sequence

import numpy as np
from mmengine.registry import VISUALIZERS
from mmengine.structures import InstanceData
from mmpose.visualization import PoseLocalVisualizer

#: the visualizer's drawing attributes and the dataset-meta keys they come from
_STYLE = (('kpt_color', 'keypoint_colors'), ('link_color', 'skeleton_link_colors'),
          ('skeleton', 'skeleton_links'))


def sample_group(data_sample: Any) -> Optional[str]:
    """The group whose keypoint meta describes a sample's keypoints: its ``pred_group``
    (set by :class:`MultiHeadPoseEstimator`), else its ``group_name``, else None."""
    meta = data_sample.metainfo
    return meta.get('pred_group') or meta.get('group_name')


@VISUALIZERS.register_module(force=True)  # over the lazy builder of visualization/__init__
class GroupPoseLocalVisualizer(PoseLocalVisualizer):
    """``PoseLocalVisualizer`` that draws each sample with its own group's keypoints.

    ``set_dataset_meta`` receives a ``MultiSourceDataset``'s metainfo (mmpose's
    ``PoseVisualizationHook`` passes the evaluator's; ``MMPoseInferencer`` the model's,
    which a :class:`MultiHeadPoseEstimator` fills from its checkpoint); its
    ``group_metainfo`` holds each group's keypoint colours and skeleton. Every sample is
    drawn with the meta of its group (:func:`sample_group`), when that group's number of
    keypoints is the number drawn; otherwise (no group, or keypoints converted to another
    layout) with the dataset meta's, as the stock visualizer does. Same arguments as
    ``PoseLocalVisualizer``.
    """

    def __init__(self, name: str = 'visualizer', **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self._base_style = {attr: getattr(self, attr) for attr, _ in _STYLE}

    def set_dataset_meta(self, dataset_meta: Dict, skeleton_style: str = 'mmpose') -> None:
        """As ``PoseLocalVisualizer``'s; remembers the style it sets as the fallback."""
        super().set_dataset_meta(dataset_meta, skeleton_style)
        self._base_style = {attr: getattr(self, attr) for attr, _ in _STYLE}

    def group_meta(self, group: Optional[str], num_keypoints: Optional[int]) -> Optional[dict]:
        """The keypoint meta of ``group`` if it describes ``num_keypoints`` keypoints."""
        metas = (self.dataset_meta or {}).get('group_metainfo') or {}
        meta = metas.get(group) if group is not None else None
        if not meta or (num_keypoints is not None and meta.get('num_keypoints') != num_keypoints):
            return None
        return meta

    @contextmanager
    def styled_for(self, data_sample: Any) -> Iterator[Optional[dict]]:
        """Within the block, draw with the keypoint style of ``data_sample``'s group.

        Yields:
            dict | None: The group meta used (None: the dataset meta's style).
        """
        meta = self.group_meta(sample_group(data_sample), _num_keypoints(data_sample))
        saved = {attr: getattr(self, attr) for attr, _ in _STYLE}
        if meta is not None:
            for attr, key in _STYLE:
                setattr(self, attr, meta.get(key, self._base_style[attr]))
        try:
            yield meta
        finally:
            for attr, value in saved.items():
                setattr(self, attr, value)

    def add_datasample(self, name: str, image: np.ndarray, data_sample: Any,
                       *args: Any, **kwargs: Any) -> Any:
        """``PoseLocalVisualizer.add_datasample`` in the style of the sample's group."""
        with self.styled_for(data_sample):
            return super().add_datasample(name, image, data_sample, *args, **kwargs)

    def draw_samples(self, image: np.ndarray, data_samples: Sequence[Any],
                     classes: Optional[Sequence[str]] = None, draw_bbox: bool = True,
                     kpt_thr: float = 0.3) -> np.ndarray:
        """Draw the predictions of several samples (e.g. boxes routed to different heads)
        on one image, each in its own group's style.

        Args:
            image (np.ndarray): RGB image (H, W, 3).
            data_samples (Sequence[PoseDataSample]): Samples with ``pred_instances``.
            classes (Sequence[str], optional): Class names of ``pred_instances.labels``,
                written on the boxes. Defaults to None (no names).
            draw_bbox (bool): Draw the boxes. Defaults to True.
            kpt_thr (float): Keypoints scored below are not drawn. Defaults to 0.3.

        Returns:
            np.ndarray: The drawn RGB image.
        """
        drawn = image.copy()
        saved_meta = self.dataset_meta
        self.dataset_meta = dict(saved_meta or {}, classes=classes)
        try:
            for sample in data_samples:
                with self.styled_for(sample):
                    drawn = self._draw_instances_kpts(drawn, sample.pred_instances, kpt_thr)
                    if draw_bbox:
                        drawn = self._draw_instances_bbox(drawn, _box_view(sample, classes))
        finally:
            self.dataset_meta = saved_meta
        return drawn


def _num_keypoints(data_sample: Any) -> Optional[int]:
    for field in ('pred_instances', 'gt_instances'):
        instances = data_sample.get(field)
        if instances is not None and 'keypoints' in instances:
            return int(np.asarray(instances.keypoints).shape[-2])
    return None


def _box_view(data_sample: Any, classes: Optional[Sequence[str]]) -> InstanceData:
    """The boxes (and, with class names, labels) of a sample's predictions."""
    pred = data_sample.pred_instances
    view = InstanceData(bboxes=np.asarray(pred.bboxes))
    if classes is not None and 'labels' in pred:
        view.labels = np.asarray(pred.labels)
    return view
