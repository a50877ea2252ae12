"""The main job on the built-in default: two generated sources -> train -> per-group metrics.

Generates the partial-label two-source dataset (person; cat + bird) under data/synthetic,
trains the demo config, evaluates each group in its own label space, prints a table and
writes work_dir/metrics.json and work_dir/predictions.png.
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

import mtl_plugin  # noqa: F401
from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source

DEFAULT_CONFIG = 'configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--data-root', default='data/synthetic')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--num-train', type=int, default=96, help='train images per source')
    parser.add_argument('--epochs', type=int, default=None, help='override max_epochs')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def ensure_data(root: str, num_train: int, seed: int) -> None:
    """Generate the demo data unless the same data is already there."""
    meta_path = osp.join(root, 'meta.json')
    want = dict(num_train=num_train, seed=seed)
    if osp.exists(meta_path):
        meta = json.load(open(meta_path))
        if meta.get('demo') == want:
            return
    generate_multi_source(root, GeneratorConfig(num_train=num_train, num_val=24, num_test=32,
                                                seed=seed))
    meta = json.load(open(meta_path))
    meta['demo'] = want
    json.dump(meta, open(meta_path, 'w'))


def print_table(metrics: dict) -> None:
    groups = sorted({k.split('/')[0] for k in metrics if '/' in k}, key=lambda g: g == 'mean')
    cols = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75')
    print(f"\n{'group':<10}" + ''.join(f'{c:>14}' for c in cols))
    for g in groups:
        vals = [metrics.get(f'{g}/coco/{c}', float('nan')) for c in cols]
        print(f'{g:<10}' + ''.join(f'{v:>14.3f}' for v in vals))


def save_predictions(runner: Runner, path: str, per_group: int = 3) -> None:
    """Draw GT (left) and predictions (right) for a few val images of every group."""
    dataset = runner.val_dataloader.dataset
    model = runner.model
    model.eval()
    vis = runner.visualizer
    vis.dataset_meta = dataset.metainfo
    rows = []
    for gid in np.unique(dataset.group_ids):
        idx = np.flatnonzero(dataset.group_ids == gid)[:per_group]
        batch = pseudo_collate([dataset[int(i)] for i in idx])
        outputs = model.test_step(batch)
        tiles = []
        for inputs, out in zip(batch['inputs'], outputs):
            img = np.ascontiguousarray(inputs.permute(1, 2, 0).numpy()[..., ::-1])
            # draw GT with the unified class names (a multi-head model already returns
            # its samples' GT in them: gt_label_space='unified')
            if dataset.label_space == 'group' and out.get('gt_label_space') != 'unified':
                gt = out.gt_instances
                gt.labels = dataset.unified_space.to_unified(out.group_name, gt.labels)
            vis.add_datasample('pred', img, out, draw_gt=True, draw_pred=True,
                               pred_score_thr=0.4, show=False)
            tiles.append(vis.get_image()[..., ::-1])
        rows.append(np.concatenate(tiles, 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    cv2.imwrite(path, cv2.resize(np.concatenate(rows, 0), None, fx=2, fy=2,
                                 interpolation=cv2.INTER_NEAREST))


def main() -> None:
    args = parse_args()
    ensure_data(args.data_root, args.num_train, args.seed)
    cfg = Config.fromfile(args.config)
    cfg.work_dir = args.work_dir
    cfg.randomness = dict(seed=args.seed)
    if args.epochs:
        cfg.train_cfg.max_epochs = args.epochs
        cfg.train_cfg.val_interval = args.epochs
    root = args.data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for source in cfg[loader].dataset.datasets:
            source.data_root = root
    for evaluator in ('val_evaluator', 'test_evaluator'):
        for group, metric in cfg[evaluator].metrics.items():
            metric.ann_file = f'{root}annotations/{group}_val.json'
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(metrics, f, indent=1)
    save_predictions(runner, osp.join(args.work_dir, 'predictions.png'))
    print_table(metrics)
    print(f'\nmetrics: {args.work_dir}/metrics.json   predictions: '
          f'{args.work_dir}/predictions.png (GT and predictions per group, one row each)')


if __name__ == '__main__':
    main()
