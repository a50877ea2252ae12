"""Consolidate partially labelled sources with a trained multi-head detector's pseudo-labels.

Every source of the config's MultiSourceDataset (``--split``) gets
``<out-dir>/<source>_consolidated.json`` over all classes: its ground truth unchanged, plus,
for the classes it does not annotate, confident predictions (score >= high) as annotations
(``"pseudo": true``) and uncertain ones (low <= score < high) as ignore regions
(``iscrowd=1``). Suspicious labels of its own classes are listed in ``review.csv`` (with
cleanlab's per-image label quality score) and shown in ``review.png``; ``summary.json``
holds the counts. Inputs are never modified; every output is written atomically.

The sources are built as the dataloader builds them and read with the test dataloader's
own pipeline (a source's ``pipeline`` or the ``MultiSourceDataset``'s shared one; never a
top-level ``test_pipeline`` variable); a source's classes are its ``metainfo.classes``,
not its file's ``categories`` (docs/tool_data.md).

The loop: train -> consolidate -> retrain on the consolidated files (e.g. a single head over
all classes: configs/consolidate/).

Examples::

    python tools/consolidate.py CONFIG work_dirs/x/best.pth --out-dir work_dirs/consolidated
    python tools/consolidate.py CONFIG CKPT --out-dir OUT --thr person=0.85,0.4 --high 0.8
    python tools/consolidate.py CONFIG CKPT --out-dir OUT \
        --tune-on data/synthetic/annotations/person_val_full.json:data/synthetic/images/person
    python tools/consolidate.py CONFIG CKPT --out-dir OUT --tune-on \
        person=data/synthetic/annotations/person_val_full.json:data/synthetic/images/person \
        animal=data/synthetic/annotations/animal_val_full.json:data/synthetic/images/animal
"""
import argparse
import copy
import os.path as osp
import sys

from mmengine.config import DictAction

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config with a MultiSourceDataset')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='trained weights (needed unless --predictions is given)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--split', default='train', choices=('train', 'val', 'test'))
    parser.add_argument('--predictions', default=None,
                        help='predictions dumped by tools/test.py --out (instead of running '
                        'the model)')
    parser.add_argument('--high', type=float, default=0.8, help='keep a pseudo box above this')
    parser.add_argument('--low', type=float, default=0.3,
                        help='between low and high: ignore region')
    parser.add_argument('--thr', nargs='+', default=[], metavar='CLASS=HIGH,LOW',
                        help='per-class thresholds')
    parser.add_argument('--tune-on', nargs='+', default=[], metavar='[SOURCE=]ANN_JSON:IMG_DIR',
                        help='fully labelled split(s): tune each class\'s high threshold to '
                        '--target-precision there (needs the model). SOURCE=: images of '
                        'that source, tuning only the classes it does not annotate, where '
                        'the pseudo boxes go (a class tuned on several: the highest)')
    parser.add_argument('--target-precision', type=float, default=0.9)
    parser.add_argument('--calibrate-boxes', action='store_true',
                        help='with --tune-on: also fit each class\'s median box correction '
                        '(centre shift, log size ratio) from its confident predictions to the '
                        'objects they match there, and apply it to its pseudo boxes (a model '
                        'that never saw a class boxed on a source\'s look draws its boxes '
                        'there with a systematic bias)')
    parser.add_argument('--min-calibration-pairs', type=int, default=10,
                        help='fewer matched boxes than this: no correction for the class')
    parser.add_argument('--review-top', type=int, default=48, help='crops in review.png')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, as in tools/train.py')
    return parser.parse_args(argv)


def _thresholds(args, error):
    from mtl_plugin.analysis.consolidation import Thresholds
    high, low = {}, {}
    for item in args.thr:
        try:
            name, values = item.split('=', 1)
            h, lo = (float(v) for v in values.split(','))
        except ValueError:
            raise error(f'--thr wants CLASS=HIGH,LOW (e.g. person=0.85,0.4), but got {item!r}')
        high[name], low[name] = h, lo
    return Thresholds(args.high, args.low, high, low)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mtl_plugin.analysis.consolidation import ConsolidationError
    try:
        return _run(args, ConsolidationError)
    except ConsolidationError as e:
        print(f'consolidate.py: error: {e}', file=sys.stderr)
        return 2


def _run(args, error) -> int:
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import mtl_plugin  # noqa: F401
    from mtl_plugin.analysis.browse import BrowseError, build_model
    from mtl_plugin.analysis.consolidation_run import (load_dumped_predictions,
                                                       predict_dataset, run_consolidation)
    from mtl_plugin.analysis.tool_data import (ToolDataError, build_tool_dataset,
                                               own_unified_classes, require_groups,
                                               source_files, unified_classes)
    if not osp.isfile(args.config):
        raise error(f'config {args.config!r} does not exist')
    if args.predictions is None and args.checkpoint is None:
        raise error('give the trained checkpoint (or --predictions from tools/test.py --out)')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise error(f'checkpoint {args.checkpoint!r} does not exist')
    if args.calibrate_boxes and not args.tune_on:
        raise error('--calibrate-boxes fits on fully labelled images: give --tune-on')
    thresholds = _thresholds(args, error)
    try:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
    except Exception as e:  # a config that does not parse: one line
        raise error(f'config {args.config!r} cannot be read: {type(e).__name__}: {e}')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        try:  # the split's sources, read with the test dataloader's own pipeline
            require_groups(cfg, args.split, 'consolidation needs one source per group')
            dataset = build_tool_dataset(cfg, args.split)
        except ToolDataError as e:
            raise error(str(e))
        except (ValueError, KeyError, TypeError, OSError) as e:  # a source that fails to load
            raise error(f'the {args.split} dataset cannot be built: {type(e).__name__}: '
                        f'{str(e).strip(chr(39))}')
        model = None
        if args.predictions is not None:
            preds = load_dumped_predictions(args.predictions)
        else:
            try:
                model = build_model(cfg, args.checkpoint, dataset.metainfo)
            except BrowseError as e:
                raise error(str(e))
            preds = predict_dataset(model, dataset, args.batch_size, cfg)
        classes = list(unified_classes(dataset, model))
        if not classes:
            raise error('the dataset declares no unified classes: give every source '
                        'metainfo=dict(classes=...)')
        tuned, calibration = _tune(args, cfg, model, dataset, classes, thresholds, error)
    own = own_unified_classes(dataset)
    sources = [dict(s, own=own[s['name']]) for s in source_files(dataset)]
    summary = run_consolidation(sources, classes, preds, thresholds, args.out_dir,
                                args.review_top, tuned, calibration)
    for name, s in summary['sources'].items():
        counts = ', '.join(f'{k} {v}' for k, v in s.items() if isinstance(v, int))
        print(f'[consolidate] {name}: {counts} -> {s["file"]}')
    print(f'[consolidate] review: {osp.join(args.out_dir, "review.csv")}, review.png')
    return 0


def _tune(args, cfg, model, dataset, classes, thresholds, error):
    """--tune-on: per-class high thresholds from fully labelled splits (or None), and with
    --calibrate-boxes each class's box correction (or None)."""
    if not args.tune_on:
        return None, None
    from mtl_plugin.analysis.consolidation import thresholds_from_matches
    from mtl_plugin.analysis.consolidation_run import match_labelled
    from mtl_plugin.analysis.tool_data import own_unified_classes
    if model is None:
        raise error('--tune-on runs the model: give the checkpoint')
    own = {name: set(m.values()) for name, m in own_unified_classes(dataset).items()}
    found = {name: [] for name in classes}
    splits = []  # (source, matched predictions) of each --tune-on item
    for item in args.tune_on:
        source, spec = item.split('=', 1) if '=' in item.split(':', 1)[0] else ('', item)
        if source and source not in own:
            raise error(f'--tune-on {item!r}: no source {source!r} (sources: {sorted(own)})')
        ann, preds = _predict_labelled(args, cfg, model, spec, classes, error)
        matches = match_labelled(ann, classes, preds)
        splits.append((source, matches))
        for name, value in thresholds_from_matches(matches, classes,
                                                   args.target_precision).items():
            if name not in own.get(source, ()):
                found[name].append(value)
    tuned = {}  # the highest threshold a class got; None: none reached the precision
    for name, values in found.items():
        reached = [v for v in values if v is not None]
        tuned[name] = max(reached) if reached else None
    for name, value in tuned.items():
        if value is not None and name not in thresholds.high:
            thresholds.high[name] = value
            thresholds.low[name] = min(thresholds.low.get(name, args.low), value)
    print(f'[consolidate] tuned high thresholds: {tuned}')
    calibration = _calibrate(args, splits, classes, own, thresholds) \
        if args.calibrate_boxes else None
    return tuned, calibration


def _calibrate(args, splits, classes, own, thresholds):
    """Each class's box correction, fitted on the --tune-on images of the sources that do
    not annotate it (where its pseudo boxes go), above its final high threshold."""
    import numpy as np
    from mtl_plugin.analysis.consolidation import box_pairs, fit_box_calibration
    pairs = {name: [] for name in classes}
    for source, matches in splits:
        high = {c: thresholds.get(c)[1] for c in classes if c not in own.get(source, ())}
        for name, got in box_pairs(matches, classes, high).items():
            pairs[name].append(got)
    joined = {name: (np.concatenate([g[0] for g in got]), np.concatenate([g[1] for g in got]))
              for name, got in pairs.items() if got}
    calibration = fit_box_calibration(joined, args.min_calibration_pairs)
    print('[consolidate] box calibration [dx, dy, dw, dh] (pairs): ' + ', '.join(
        f'{c}: {v} ({len(joined[c][0])})' for c, v in calibration.items()))
    return calibration


def _predict_labelled(args, cfg, model, spec, classes, error):
    """The model's predictions on one fully labelled ``ANN_JSON:IMG_DIR``: (file, preds)."""
    from mtl_plugin.analysis.consolidation_run import predict_dataset
    from mtl_plugin.analysis.tool_data import ToolDataError, build_tool_dataset, tool_dataset_cfg
    ann, _, img_dir = spec.partition(':')
    if not osp.isfile(ann):
        raise error(f'--tune-on file {ann!r} does not exist')
    tune_ds = copy.deepcopy(tool_dataset_cfg(cfg, args.split)['datasets'][0])
    inner = tune_ds if 'type' in tune_ds else tune_ds['dataset']
    inner.update(data_root='', ann_file=osp.abspath(ann), data_prefix=dict(
        img=osp.abspath(img_dir or osp.dirname(ann)) + '/'),
        metainfo=dict(classes=tuple(classes)), filter_cfg=None, test_mode=True)
    tune_cfg = copy.deepcopy(cfg)  # a plain dataset: merged predictions of every head,
    # with no group a multi-head model would have to know
    tune_cfg.test_dataloader = dict(copy.deepcopy(cfg.get('test_dataloader') or {}),
                                    dataset={k: v for k, v in inner.items()
                                             if k != 'group_name'})
    try:
        tune_set = build_tool_dataset(tune_cfg, 'test')
    except ToolDataError as e:
        raise error(f'--tune-on: {e}')
    return ann, predict_dataset(model, tune_set, args.batch_size, cfg)


if __name__ == '__main__':
    sys.exit(main())
