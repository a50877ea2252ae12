"""Report the statistics of each source of a multi-source dataset (no image is read).

Examples::

    # the train sources of a config (its MultiSourceDataset)
    python tools/analysis/dataset_report.py \
        configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py \
        --out-dir work_dirs/report --split val
    # annotation files directly
    python tools/analysis/dataset_report.py \
        --ann person=data/synthetic/annotations/person_train.json \
        --ann animal=data/synthetic/annotations/animal_train.json --out-dir work_dirs/report

Per source: images, instances per class, boxes per image, relative box size, aspect ratio,
keypoint visibility, crowd and empty images, class imbalance; across sources: the
label-space overlap. Writes ``report.json`` and PNG charts to ``--out-dir``.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', nargs='?', default=None,
                        help='config whose <split>_dataloader.dataset is a MultiSourceDataset')
    parser.add_argument('--split', choices=('train', 'val', 'test'), default='train')
    parser.add_argument('--ann', action='append', default=[], metavar='NAME=PATH',
                        help='a COCO annotation file and its group name (repeat; instead '
                        'of a config)')
    parser.add_argument('--out-dir', required=True, help='where report.json and PNGs go')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    parser.add_argument('--no-plots', action='store_true', help='write report.json only')
    return parser.parse_args(argv)


def _sources(args):
    from mtl_plugin.analysis.dataset_report import (DatasetReportError, parse_ann_args,
                                                    sources_from_config)
    if (args.config is None) == (not args.ann):
        raise DatasetReportError('give either a config or --ann NAME=path.json (one of them)')
    if args.ann:
        return parse_ann_args(args.ann)
    if not osp.isfile(args.config):
        raise DatasetReportError(f'config {args.config!r} does not exist')
    # the sources are built as the dataloader builds them (not loaded): their classes are
    # the metainfo classes training keeps, not every category of the files
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return sources_from_config(cfg, args.split)


def _print_summary(report: dict) -> None:
    cols = ('source', 'images', 'boxes', 'classes', 'boxes/img', 'empty', 'crowd', 'imbalance')
    print('  '.join(f'{c:>10}' for c in cols))
    for name, s in report['sources'].items():
        ratio = s['imbalance_ratio']
        vals = (name, s['num_images'], s['num_annotations'], len(s['classes']),
                f"{s['boxes_per_image']['mean']:.2f}", s['empty_images'], s['crowd'],
                '-' if ratio is None else f'{ratio:.1f}')
        print('  '.join(f'{v:>10}' for v in vals))


def main(argv=None) -> int:
    args = parse_args(argv)
    # imported here, so that --help answers without importing torch
    from mtl_plugin.analysis.dataset_report import (DatasetReportError, build_report,
                                                    plot_report, write_report)
    try:
        report = build_report(_sources(args), progress=sys.stderr.isatty())
        report['settings'] = dict(config=args.config, split=args.split if args.config else None)
        path = write_report(report, args.out_dir)
        pngs = {} if args.no_plots else plot_report(report, args.out_dir)
    except DatasetReportError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    _print_summary(report)
    print(f'wrote {path}' + (f' and {len(pngs)} PNGs' if pngs else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
