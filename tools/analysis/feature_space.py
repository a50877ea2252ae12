"""Feature-space analysis: how a model's features cluster by dataset and by class.

Example::

    python tools/analysis/feature_space.py \
        configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py work_dirs/x/epoch_4.pth \
        --split val --max-images 200 --level 0 --out-dir work_dirs/feature_space

Reads ``<split>_dataloader.dataset`` (a ``MultiSourceDataset``; the train split is read
with the test pipeline, so that no random augmentation moves the boxes), pools level
``--level`` of ``model.extract_feat`` per image and RoI-aligns every GT box on it. Writes
``features.npz``, ``feature_space.json`` (spread, centroid distances, silhouette, Fisher
ratio, Davies-Bouldin, domain gap) and ``tsne.png`` to ``--out-dir``, and prints a summary.
"""
import argparse
import contextlib
import os.path as osp
import sys
import warnings

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import Config, DictAction  # noqa: E402

from mtl_plugin.analysis.feature_space import (FeatureSpaceError,  # noqa: E402
                                               analyse_features, extract_features,
                                               pick_indices, save_outputs, tsne_embedding)

SPLITS = ('train', 'val', 'test')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model + data config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (omitted: randomly initialised weights, with a '
                        'warning)')
    parser.add_argument('--split', choices=SPLITS, default='val',
                        help='which <split>_dataloader.dataset to read (default: val)')
    parser.add_argument('--max-images', type=int, default=200,
                        help='images to read, balanced over datasets (default: 200)')
    parser.add_argument('--level', type=int, default=0,
                        help='feature level of extract_feat() (default: 0, the finest)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0, help='seed of t-SNE and the CV folds')
    parser.add_argument('--out-dir', default=None,
                        help='default: work_dirs/feature_space/<config stem>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Extract, analyse, write; returns the paths written and the report."""
    if not osp.isfile(args.config):
        raise FeatureSpaceError(f'config file not found: {args.config!r}')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise FeatureSpaceError(f'checkpoint not found: {args.checkpoint!r}')
    if args.max_images < 1 or args.batch_size < 1:
        raise FeatureSpaceError('--max-images and --batch-size must be >= 1, but got '
                                f'{args.max_images!r} and {args.batch_size!r}')
    from mmdet.apis import init_detector
    try:
        cfg = Config.fromfile(args.config)
    except Exception as err:  # a broken config file is one line, not a traceback
        raise FeatureSpaceError(f'cannot read config {args.config!r}: {err}') from err
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from mtl_plugin.analysis.tool_data import ToolDataError, build_tool_dataset, require_groups
    try:  # the split's sources with its dataloader's pipeline (the test one for train)
        require_groups(cfg, args.split, 'feature_space compares groups')
        dataset = build_tool_dataset(cfg, args.split)
    except ToolDataError as err:
        raise FeatureSpaceError(str(err)) from err
    if args.checkpoint is None:
        warnings.warn('no checkpoint given: analysing a randomly initialised model')
    model = init_detector(cfg, args.checkpoint, device='cpu')
    model.dataset_meta = dataset.metainfo
    indices = pick_indices(dataset.group_ids, args.max_images)
    feats = extract_features(model, dataset, args.level, indices, args.batch_size, cfg=cfg)
    report = analyse_features(feats, seed=args.seed)
    report.update(config=args.config, checkpoint=args.checkpoint, split=args.split)
    embedding = tsne_embedding(feats['inst_feats'], seed=args.seed)
    out_dir = args.out_dir or osp.join('work_dirs', 'feature_space',
                                       osp.splitext(osp.basename(args.config))[0])
    return dict(paths=save_outputs(out_dir, feats, report, embedding), report=report)


def _summary(report: dict) -> str:
    gap = report['image']['domain_gap']
    lines = [f"images: {report['num_images']}, instances: {report['num_instances']}, "
             f"level {report['level']} (stride {report['stride']:g})"]
    acc = gap['balanced_accuracy']
    lines.append('domain gap (balanced acc. of dataset from image features): '
                 + (f'{acc:.3f} (chance {gap["chance"]:.3f})' if acc is not None
                    else f'n/a ({gap.get("reason")})'))
    for key in ('by_class', 'by_dataset'):
        m = report['instance'][key]
        if m is not None:
            lines.append(f'instances {key}: silhouette {m["silhouette"]}, '
                         f'fisher {m["fisher_ratio"]}, davies-bouldin {m["davies_bouldin"]}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the result
            out = run(args)
    except FeatureSpaceError as e:
        print(f'feature_space.py: error: {e}', file=sys.stderr)
        return 2
    print(_summary(out['report']))
    for kind, path in out['paths'].items():
        print(f'[feature_space] {kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
