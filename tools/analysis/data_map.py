"""Scored labels from training dynamics (Dataset Cartography, Swayamdipta et al. 2020).

Example::

    # 1. train with the hook (every GT instance's gold confidence, each epoch)
    python tools/train.py configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py \
        --work-dir work_dirs/dm --cfg-options "custom_hooks=[dict(type='HeadIsolationHook'),\
dict(type='DataMapHook')]"
    # 2. score the labels
    python tools/analysis/data_map.py work_dirs/dm --out-dir work_dirs/dm/report

Reads ``WORK_DIR/data_map/epoch_*.npz`` (at least 2 epochs) and ``meta.json``; per label
computes confidence (mean gold confidence over epochs), variability (its std) and
correctness (fraction of epochs correct), and a region: ``ambiguous`` when variability
>= 0.2, else ``hard-to-learn`` (likely mislabelled) when confidence < 0.33, ``easy``
when confidence >= 0.66, else ``ambiguous`` (cut-offs are options). Annotation ids come
from re-parsing each group's COCO file as mmdet does (the files named in ``meta.json``,
or ``--config``'s ``train_dataloader.dataset`` when they moved). Writes
``scored_labels.csv`` (sorted by confidence, lowest first), ``data_map.png`` and
``summary.json`` to ``--out-dir``.
"""
import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mtl_plugin.analysis.data_map import (DataMapError, RegionRule,  # noqa: E402
                                          score_labels, sources_from_config, write_outputs)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('work_dir', help='work dir of a run trained with DataMapHook (or its '
                        'data_map folder)')
    parser.add_argument('--config', default=None, help='config whose train_dataloader.dataset '
                        'gives the annotation files (default: those named in meta.json)')
    parser.add_argument('--out-dir', required=True, help='where to write the outputs')
    parser.add_argument('--hard-confidence', type=float, default=0.33,
                        help='below: hard-to-learn (default: 0.33)')
    parser.add_argument('--easy-confidence', type=float, default=0.66,
                        help='at or above, with low variability: easy (default: 0.66)')
    parser.add_argument('--ambiguous-variability', type=float, default=0.2,
                        help='at or above: ambiguous (default: 0.2)')
    parser.add_argument('--show', type=int, default=10,
                        help='print this many lowest-confidence labels (default: 10)')
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Score the labels and write the outputs; returns the summary."""
    rule = RegionRule(args.hard_confidence, args.easy_confidence, args.ambiguous_variability)
    import mtl_plugin  # noqa: F401  (registers the datasets of a config)
    sources = None
    if args.config is not None:
        if not osp.isfile(args.config):
            raise DataMapError(f'config file not found: {args.config!r}')
        from mmengine.config import Config
        sources = sources_from_config(Config.fromfile(args.config))
    table, summary = score_labels(args.work_dir, rule, sources)
    summary['files'] = write_outputs(args.out_dir, table, rule, summary)
    lines = [f'{summary["num_labels"]} labels over epochs {summary["epochs"]}: ' + ', '.join(
        f'{n} {r}' for r, n in summary['regions'].items())]
    for i in range(min(args.show, summary['num_labels'])):
        ann = int(table['ann_id'][i])
        lines.append(f'  {table["region"][i]:<13} conf {table["confidence"][i]:.3f} '
                     f'var {table["variability"][i]:.3f}  group {table["group"][i]} image '
                     f'{table["image_id"][i]} ann {ann if ann >= 0 else "?"} '
                     f'({table["class"][i]})')
    summary['text'] = '\n'.join(lines)
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except DataMapError as e:
        print(f'data_map.py: error: {e}', file=sys.stderr)
        return 2
    print(summary['text'])
    for kind, path in summary['files'].items():
        print(f'[data_map] {kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
