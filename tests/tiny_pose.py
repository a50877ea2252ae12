"""A tiny multi-head pose config (COCO 17 + Animal-Pose 20 keypoints, 64x64 inputs)."""
import os.path as osp

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
POSE_CONFIG = osp.join(REPO, 'configs', 'pose',
                       'multihead-td-hm_res18_1xb4-1e_coco-animalpose-128x96.py')
CODEC = dict(type='MSRAHeatmap', input_size=(64, 64), heatmap_size=(16, 16), sigma=2)


def tiny_head(num_keypoints: int) -> dict:
    """A heatmap head on the tiny backbone's (B, 64, 2, 2) features: (B, K, 16, 16)."""
    return dict(type='HeatmapHead', in_channels=64, out_channels=num_keypoints,
                deconv_out_channels=(16, 16, 16), deconv_kernel_sizes=(4, 4, 4),
                loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=CODEC)


def _resize(pipeline: list) -> None:
    for t in pipeline:
        if t['type'] == 'TopdownAffine':
            t['input_size'] = CODEC['input_size']
        if t['type'] == 'GenerateTarget':
            t['encoder'] = CODEC


def tiny_pose_config(data_root: str) -> Config:
    """The repo's COCO + Animal-Pose multi-head config with a tiny model, data under
    ``data_root`` (a copy of ../shared/data/real)."""
    cfg = Config.fromfile(POSE_CONFIG)
    cfg.model.backbone = dict(type='ResNet', depth=18, base_channels=8)
    cfg.model.heads = dict(person=tiny_head(17), animal=tiny_head(20))
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        _resize(loader.dataset.pipeline)
        for src in loader.dataset.datasets:
            src.data_root = data_root.rstrip('/') + '/'
    cfg.test_dataloader = cfg.val_dataloader
    for name, metric in cfg.val_evaluator.metrics.items():
        metric.ann_file = osp.join(data_root, osp.relpath(metric.ann_file, '../shared/data/real'))
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_pipeline, cfg.test_pipeline = (cfg.train_dataloader.dataset.pipeline,
                                             cfg.val_dataloader.dataset.pipeline)
    return cfg


def write_tiny_pose_config(data_root: str, path: str) -> str:
    """:func:`tiny_pose_config` dumped to ``path``."""
    tiny_pose_config(data_root).dump(path)
    return path
