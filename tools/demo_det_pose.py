"""Detector -> pose, routed by class: each box goes to the pose head of its class's dataset.

Person boxes get the person head's keypoints (COCO, 17), animal boxes the animal head's
(Animal-Pose, 20, with the default config), each drawn with its own dataset's skeleton and
colours (``GroupPoseLocalVisualizer.draw_samples``). Writes ``<out-dir>/<image>.png`` and
``<out-dir>/det_pose.json`` (per image, per box: class, group, head, box, keypoints).

Without ``--det-config`` the detector is an oracle: the boxes of the sample annotation files
(``../shared/data/real``), each with its category's name, each file's categories being its
dataset's group (COCO -> ``person``; AP-10K, Animal-Pose -> ``animal``). With
``--det-config`` / ``--det-checkpoint``, a trained (multi-head) mmdet detector gives the
boxes and its label space the class -> group map (``mtl_plugin.apis.inference_det_pose``).
Without ``--pose-checkpoint`` the pose model keeps its random initial weights: the routing
and the per-dataset skeletons are right, the keypoints meaningless (train with mmpose's
``tools/train.py`` on the config for real ones). Nothing is trained here.

Examples::

    python tools/demo_det_pose.py --out-dir work_dirs/demo_det_pose
    python tools/demo_det_pose.py --pose-config CFG --pose-checkpoint CKPT \
        --det-config DET_CFG --det-checkpoint DET_CKPT --images a.jpg b.jpg
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

POSE_CONFIG = osp.join(REPO, 'configs', 'pose',
                       'multihead-td-hm_res18_1xb4-1e_coco-animalpose-128x96.py')
DATA_ROOT = osp.normpath(osp.join(REPO, '..', 'shared', 'data', 'real'))
#: (group, folder, annotation file, image) of the oracle's sample images
SAMPLES = (('person', 'coco', 'test_coco.json', '000000196141.jpg'),
           ('animal', 'ap10k', 'test_ap10k.json', '000000000004.jpg'),
           ('animal', 'animalpose', 'test_animalpose.json', 'ho105.jpeg'))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--pose-config', default=POSE_CONFIG)
    parser.add_argument('--pose-checkpoint', default=None, help='default: random weights')
    parser.add_argument('--det-config', default=None, help='default: the oracle detector')
    parser.add_argument('--det-checkpoint', default=None)
    parser.add_argument('--data-root', default=DATA_ROOT,
                        help='the real samples (the pose config\'s data_root is replaced)')
    parser.add_argument('--images', nargs='+', default=None,
                        help='images for --det-config (default: the oracle\'s samples)')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--kpt-thr', type=float, default=None,
                        help='keypoints drawn from this score (default 0.3, or 0 with random '
                        'pose weights, whose scores are all low)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if (args.det_config is None) != (args.det_checkpoint is None):
        parser.error('give --det-config and --det-checkpoint together (or neither: oracle)')
    if args.images and args.det_config is None:
        parser.error('--images needs a detector (--det-config): the oracle knows only the '
                     'annotated samples')
    return args


def load_pose_model(config: str, checkpoint: Optional[str], data_root: str, device: str):
    """mmpose's ``init_model``; with random weights, the keypoint metas come from the
    config's test dataset (a checkpoint carries its own)."""
    from mmengine.config import Config
    from mmengine.registry import DATASETS
    from mmpose.apis import init_model
    cfg = Config.fromfile(config)
    for src in cfg.test_dataloader.dataset.datasets:
        src.data_root = data_root.rstrip('/') + '/'
    model = init_model(cfg, checkpoint, device=device)
    if checkpoint is None:
        model.dataset_meta = DATASETS.build(cfg.test_dataloader.dataset).metainfo
    return model


def oracle_detections(data_root: str, samples: Sequence[Tuple[str, str, str, str]]
                      ) -> Tuple[Tuple[str, ...], Dict[str, List[str]], list]:
    """The annotated boxes of ``samples`` as detections (score 1).

    Returns:
        tuple: the classes (category names, in order of first appearance), class ->
        groups, and per image ``(path, DetDataSample)``.
    """
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    classes: List[str] = []
    groups: Dict[str, List[str]] = {}
    images = []
    for group, folder, ann_file, image in samples:
        with open(osp.join(data_root, folder, ann_file)) as f:
            coco = json.load(f)
        names = {c['id']: c['name'] for c in coco['categories']}
        img_id = next(i['id'] for i in coco['images'] if i['file_name'] == image)
        anns = [a for a in coco['annotations'] if a['image_id'] == img_id]
        for ann in anns:
            name = names[ann['category_id']]
            if name not in classes:
                classes.append(name)
            groups.setdefault(name, [])
            if group not in groups[name]:
                groups[name].append(group)
        det = DetDataSample()
        det.pred_instances = InstanceData(
            bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in
                                 (a['bbox'] for a in anns)], dtype=torch.float32),
            labels=torch.tensor([classes.index(names[a['category_id']]) for a in anns]),
            scores=torch.ones(len(anns)))
        images.append((osp.join(data_root, folder, image), det))
    return tuple(classes), groups, images


def detections(args: argparse.Namespace, pose_model) -> Tuple[Tuple[str, ...], dict, list]:
    """Classes, class -> route and per image ``(path, DetDataSample)``: the oracle's or
    the detector's."""
    from mtl_plugin.apis import det_class_groups, resolve_class_routes
    if args.det_config is None:
        classes, groups, images = oracle_detections(args.data_root, SAMPLES)
    else:
        from mmdet.apis import inference_detector, init_detector
        det_model = init_detector(args.det_config, args.det_checkpoint, device=args.device)
        classes, groups = det_class_groups(det_model)
        paths = args.images or [osp.join(args.data_root, s[1], s[3]) for s in SAMPLES]
        images = [(p, inference_detector(det_model, p)) for p in paths]
    return classes, resolve_class_routes(classes, groups, pose_model), images


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the demo; returns what it wrote to ``det_pose.json``."""
    import mmcv
    import mtl_plugin  # noqa: F401  (registers the plugin's modules)
    from mtl_plugin.apis import det_pose_to_json, pose_from_detections
    from mtl_plugin.visualization import GroupPoseLocalVisualizer
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    pose_model = load_pose_model(args.pose_config, args.pose_checkpoint, args.data_root,
                                 args.device)
    classes, routes, images = detections(args, pose_model)
    kpt_thr = args.kpt_thr if args.kpt_thr is not None else (
        0.3 if args.pose_checkpoint else 0.0)
    visualizer = GroupPoseLocalVisualizer(name='demo_det_pose', radius=4, line_width=2)
    visualizer.set_dataset_meta(pose_model.dataset_meta)
    report = dict(classes=list(classes), images={})
    for path, det in images:
        samples = pose_from_detections(pose_model, path, det, classes, routes, args.score_thr)
        image = mmcv.imread(path, channel_order='rgb')
        drawn = visualizer.draw_samples(image, samples, classes=classes, kpt_thr=kpt_thr)
        name = osp.splitext(osp.basename(path))[0]
        mmcv.imwrite(mmcv.rgb2bgr(drawn), osp.join(args.out_dir, f'{name}.png'))
        report['images'][osp.basename(path)] = det_pose_to_json(samples, classes)
    with open(osp.join(args.out_dir, 'det_pose.json'), 'w') as f:
        json.dump(report, f, indent=1)
    for image, boxes in report['images'].items():
        print(f'{image}: ' + ', '.join(f'{b["class_name"]} -> {b["head"]} '
                                       f'({len(b["keypoints"])} keypoints)' for b in boxes))
    return report


if __name__ == '__main__':
    main()
