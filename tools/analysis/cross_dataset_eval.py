"""Cross-dataset matrix: every head of a multi-head detector on every eval dataset.

Example::

    python tools/analysis/cross_dataset_eval.py \
        configs/multihead/multihead-retinanet_r18_fpn_1xb2-1e_coco-ap10k.py epoch_1.pth \
        --eval coco=../shared/data/real/coco/test_coco.json \
               crowdpose=../shared/data/real/crowdpose/test_crowdpose.json \
               ap10k=../shared/data/real/ap10k/test_ap10k.json \
        --out-dir work_dirs/cross_dataset

Each ``--eval NAME=ANN.json[:IMG_DIR]`` is a COCO annotation file (images under IMG_DIR,
default: the annotation file's folder), read with the config's test pipeline. A cell is
the COCO bbox mAP of one head on one eval set over the classes they share by name (after
``--class-map``, a JSON/YAML file ``{name: {local class: common class}}`` keyed by head or
eval name); '-' where they share none. Writes ``matrix.json`` and ``matrix.png`` to
``--out-dir`` and prints the Markdown table.
"""
import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import sys
import tempfile
import warnings

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import Config, DictAction  # noqa: E402

from mtl_plugin.evaluation.cross_dataset import (CrossDatasetError,  # noqa: E402
                                                 complete_coco_gt, cross_dataset_matrix,
                                                 matrix_markdown, plot_matrix)
from mtl_plugin.io import atomic_write as _atomic_write  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config of the MultiHeadDetector')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (omitted: randomly initialised weights, with a '
                        'warning)')
    parser.add_argument('--eval', nargs='+', required=True, metavar='NAME=ANN.json[:IMG_DIR]',
                        help='eval datasets: COCO annotation files (their categories are '
                        'the classes), or GROUP: that source of the test dataloader, as '
                        'tools/test.py reads it (its metainfo classes)')
    parser.add_argument('--class-map', default=None,
                        help='JSON/YAML {head or eval name: {local class: common class}}')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--out-dir', default=None,
                        help='default: work_dirs/cross_dataset/<config stem>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def parse_eval(specs) -> dict:
    """``['NAME=ANN.json[:IMG_DIR]', 'GROUP', ...]`` -> name -> (ann file, image dir), or
    None for a source of the test dataloader."""
    out = {}
    for spec in specs:
        name, sep, rest = spec.partition('=')
        if not sep and name and name not in out:
            out[name] = None  # a source of the test dataloader, resolved once it is built
            continue
        if not sep or not name or not rest:
            raise CrossDatasetError(f'--eval takes NAME=ANN.json[:IMG_DIR], but got {spec!r}')
        ann, _, img = rest.partition(':') if not osp.isfile(rest) else (rest, '', '')
        if not osp.isfile(ann):
            raise CrossDatasetError(f'--eval {name}: annotation file not found: {ann!r}')
        img = img or osp.dirname(osp.abspath(ann))
        if not osp.isdir(img):
            raise CrossDatasetError(f'--eval {name}: image folder not found: {img!r}')
        if name in out:
            raise CrossDatasetError(f'--eval names {name!r} twice; names must be unique')
        out[name] = (ann, img)
    return out


def _load_class_map(path):
    if path is None:
        return None
    if not osp.isfile(path):
        raise CrossDatasetError(f'--class-map file not found: {path!r}')
    from mmengine.fileio import load
    try:
        table = load(path)
    except Exception as err:  # any parse error of a user file is one line
        raise CrossDatasetError(f'--class-map {path!r} cannot be read: {err}') from err
    if not isinstance(table, dict) or not all(
            isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str)
                                        for a, b in v.items()) for v in table.values()):
        raise CrossDatasetError(f'--class-map {path!r} must hold {{name: {{local class: '
                                f'common class}}}}, but got {table!r}')
    return table


def _test_pipeline(cfg: Config) -> list:
    """The test dataloader's own pipeline (the shared one, else its first source's)."""
    from mtl_plugin.analysis.tool_data import ToolDataError, source_pipelines
    try:
        pipelines = source_pipelines(cfg, 'test')
    except ToolDataError as err:
        raise CrossDatasetError(f'{err} (the eval images are read with it)') from err
    return copy.deepcopy(pipelines.get(None, next(iter(pipelines.values()))))


def _read_coco(name: str, path: str) -> dict:
    try:
        with open(path) as f:
            gt = json.load(f)
    except ValueError as err:
        raise CrossDatasetError(f'--eval {name}: {path!r} is not JSON: {err}') from err
    missing = [k for k in ('images', 'annotations', 'categories') if k not in gt]
    if missing:
        raise CrossDatasetError(f'--eval {name}: {path!r} is not a COCO file (no {missing})')
    return gt


def _build_eval_sets(specs: dict, pipeline: list, tmp_dir: str) -> dict:
    """mmdet ``CocoDataset`` per eval set; files lacking ``area`` are read via a completed
    copy in ``tmp_dir`` (the input file is left as it is)."""
    from mmengine.registry import DATASETS
    datasets = {}
    for name, (ann, img) in specs.items():  # files: their categories are the eval classes
        gt = _read_coco(name, ann)
        classes = tuple(c['name'] for c in gt.get('categories', []))
        complete = complete_coco_gt(gt)
        if complete != gt:
            ann = osp.join(tmp_dir, f'{name}.json')
            with open(ann, 'w') as f:
                json.dump(complete, f)
        datasets[name] = DATASETS.build(dict(
            type='mmdet.CocoDataset', ann_file=osp.abspath(ann), data_root='',
            data_prefix=dict(img=img + os.sep), metainfo=dict(classes=classes),
            test_mode=True, pipeline=copy.deepcopy(pipeline)))
    return datasets


def _test_set(cfg: Config):
    """The test dataloader's dataset, built as tools/test.py builds it."""
    from mtl_plugin.analysis.tool_data import ToolDataError, build_tool_dataset
    try:
        return build_tool_dataset(cfg, 'test')
    except ToolDataError as err:
        raise CrossDatasetError(str(err)) from err


def _group_sets(specs: dict, test_set) -> dict:
    """Eval name -> the test dataloader's source of that group (its pipeline, classes)."""
    groups = list(getattr(test_set, 'group_names', ()))
    wanted = [n for n, spec in specs.items() if spec is None]
    unknown = [n for n in wanted if n not in groups]
    if unknown:
        raise CrossDatasetError(f'--eval {unknown[0]} is no NAME=ANN.json and no group of '
                                f'test_dataloader.dataset (its groups: {groups})')
    return {n: test_set.get_group_dataset(n) for n in wanted}


def _source_file(spec, dataset) -> tuple:
    """(ann file, image dir) of an eval set: as given, or the test source's."""
    if spec is not None:
        return spec
    return dataset.ann_file, (getattr(dataset, 'data_prefix', None) or {}).get('img', '')


def _set_group_meta(model, test_set) -> None:
    """Give the model its groups' classes (checkpoint meta, else the test dataset's)."""
    meta = getattr(model, 'dataset_meta', None) or {}
    if meta.get('group_metainfo'):
        return
    model.dataset_meta = test_set.metainfo


def run(args: argparse.Namespace) -> dict:
    """Build, predict, evaluate, write; returns the result and the paths written."""
    if not osp.isfile(args.config):
        raise CrossDatasetError(f'config file not found: {args.config!r}')
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        raise CrossDatasetError(f'checkpoint not found: {args.checkpoint!r}')
    if args.batch_size < 1:
        raise CrossDatasetError(f'--batch-size must be >= 1, but got {args.batch_size!r}')
    specs = parse_eval(args.eval)
    class_map = _load_class_map(args.class_map)
    from mmdet.apis import init_detector
    try:
        cfg = Config.fromfile(args.config)
    except Exception as err:  # a broken config file is one line, not a traceback
        raise CrossDatasetError(f'cannot read config {args.config!r}: {err}') from err
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('model', {}).get('type') != 'MultiHeadDetector':
        raise CrossDatasetError(f'config model is {cfg.get("model", {}).get("type")!r}: the '
                                'cross-dataset matrix needs a MultiHeadDetector (one head per '
                                'train group)')
    if args.checkpoint is None:
        warnings.warn('no checkpoint given: evaluating a randomly initialised model')
    model = init_detector(cfg, args.checkpoint, device='cpu')
    test_set = _test_set(cfg)
    _set_group_meta(model, test_set)
    unknown = set(class_map or {}) - set(model.heads) - set(specs)
    if unknown:  # checked before predicting, not after
        raise CrossDatasetError(f'--class-map names {sorted(unknown)}, which are neither heads '
                                f'{list(model.heads)} nor --eval names {list(specs)}')
    with tempfile.TemporaryDirectory() as tmp_dir:
        files = {n: spec for n, spec in specs.items() if spec is not None}
        groups = _group_sets(specs, test_set)
        datasets = _build_eval_sets(files, _test_pipeline(cfg), tmp_dir) if files else {}
        datasets = {n: groups[n] if n in groups else datasets[n] for n in specs}
        result = cross_dataset_matrix(model, datasets, class_map, args.batch_size)
    result.update(config=args.config, checkpoint=args.checkpoint,
                  eval_files={n: dict(zip(('ann_file', 'img_dir'), _source_file(specs[n], ds)))
                              for n, ds in datasets.items()},
                  class_map=class_map)
    out_dir = args.out_dir or osp.join('work_dirs', 'cross_dataset',
                                       osp.splitext(osp.basename(args.config))[0])
    paths = dict(json=osp.join(out_dir, 'matrix.json'), png=osp.join(out_dir, 'matrix.png'))
    _atomic_write(paths['json'], json.dumps(result, indent=1).encode())
    _atomic_write(paths['png'], plot_matrix(result))
    return dict(result=result, paths=paths)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the result
            out = run(args)
    except CrossDatasetError as e:
        print(f'cross_dataset_eval.py: error: {e}', file=sys.stderr)
        return 2
    print(matrix_markdown(out['result']), end='')
    for kind, path in out['paths'].items():
        print(f'[cross_dataset] {kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
