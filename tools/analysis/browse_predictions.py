"""Draw the ground truth and each head's predictions for a few images of every group.

Examples::

    python tools/analysis/browse_predictions.py \
        configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py \
        work_dirs/demo/epoch_4.pth --split val --num-images 4 --out-dir work_dirs/browse
    # no checkpoint: a randomly initialised model (to check the wiring)
    python tools/analysis/browse_predictions.py CONFIG --img-ids 1 2 --score-thr 0.05 \
        --out-dir work_dirs/browse

One PNG per group (``<out-dir>/<group>.png``): one row per image, the image with its GT
boxes, then one panel per head of a ``MultiHeadDetector`` with that head's predictions
alone (score >= --score-thr) in its own class names (a stock detector: one panel). Also
writes ``predictions.json`` (boxes, scores, labels per head per image).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config of a detector (MultiHeadDetector or stock)')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint file (omit: random init, with a warning)')
    parser.add_argument('--split', choices=('train', 'val', 'test'), default='val')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--num-images', type=int, default=4, help='images per group')
    which.add_argument('--img-ids', type=int, nargs='+', help='these image ids (in any group)')
    parser.add_argument('--seed', type=int, default=None,
                        help='pick --num-images at random with this seed (default: the first)')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir', required=True, help='where the PNGs and JSON go')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import mtl_plugin  # noqa: F401  (registers modules, allows safe checkpoint loading)
    from mmengine.registry import DefaultScope
    from mtl_plugin.analysis.browse import (BrowseError, browse, build_browse_dataset,
                                            build_model, select_images)
    try:
        if not osp.isfile(args.config):
            raise BrowseError(f'config {args.config!r} does not exist')
        if args.checkpoint is not None and not osp.isfile(args.checkpoint):
            raise BrowseError(f'checkpoint {args.checkpoint!r} does not exist (omit it to '
                              'browse a randomly initialised model)')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
            dataset = build_browse_dataset(cfg, args.split)
            selection = select_images(dataset, args.num_images, args.img_ids, args.seed)
            if args.checkpoint is None:
                print('warning: no checkpoint given: the predictions come from randomly '
                      'initialised weights', file=sys.stderr)
            model = build_model(cfg, args.checkpoint, dataset.metainfo, args.device)
            paths = browse(model, dataset, selection, args.out_dir, args.score_thr,
                           args.batch_size, cfg)
    except BrowseError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f'{name}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
