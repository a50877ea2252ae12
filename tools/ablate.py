"""Run an ablation family (or read its finished work dirs) and write one table.

Examples::

    # train every config of the detector family, then tabulate
    python tools/ablate.py configs/mtl/mtl-*_retinanet_*.py --run \
        --work-root work_dirs/ablate --cfg-options data_root=data/synthetic/
    # only read runs that already finished
    python tools/ablate.py configs/mtl/mtl-*_retinanet_*.py --work-root work_dirs/ablate

Each config trains with ``tools/train.py CONFIG --work-dir <work-root>/<config stem>`` in
its own process (sequentially). The table has one row per config and the per-dataset
columns of the monitored metric (``<group>/coco/bbox_mAP`` ... and
``mean/coco/bbox_mAP``), taken from the best evaluation (``--rule last`` for the last).
Writes ``ablation.md``, ``ablation.csv``, ``ablation.json`` and ``ablation.png`` (grouped
bars) to ``--out-dir`` (default: the work root) and prints the Markdown table.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mtl_plugin.analysis.ablation import (AblationError, metric_columns,  # noqa: E402
                                          read_run, write_table)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='config files, one row each')
    parser.add_argument('--work-root', required=True,
                        help='parent of the work dirs (<work-root>/<config stem>)')
    parser.add_argument('--run', action='store_true',
                        help='train each config first (skips runs that already have '
                        'results unless --rerun)')
    parser.add_argument('--rerun', action='store_true', help='with --run: train again')
    parser.add_argument('--monitor', default=None,
                        help='metric that picks the evaluation and names the columns '
                        '(default: the first mean/... key)')
    parser.add_argument('--rule', choices=('best', 'last'), default='best')
    parser.add_argument('--out-dir', default=None, help='default: --work-root')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed to tools/train.py for every run')
    return parser.parse_args(argv)


def _train(config: str, work_dir: str, cfg_options) -> None:
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir]
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    print(f'[ablate] training {osp.basename(config)} -> {work_dir}', flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (REPO, os.environ.get('PYTHONPATH')) if p))
    if subprocess.run(cmd, env=env).returncode != 0:
        raise AblationError(f'training {config} failed (see its log in {work_dir})')


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        runs = {}
        for config in args.configs:
            if not osp.isfile(config):
                raise AblationError(f'config {config!r} does not exist')
            name = osp.splitext(osp.basename(config))[0]
            work_dir = osp.join(args.work_root, name)
            if args.run:
                try:
                    if args.rerun:
                        raise AblationError('rerun')
                    read_run(work_dir, args.monitor, args.rule)
                    print(f'[ablate] {name}: results found, not retrained', flush=True)
                except AblationError:
                    _train(config, work_dir, args.cfg_options)
            runs[name] = read_run(work_dir, args.monitor, args.rule)
        monitor = args.monitor or next(iter(runs.values()))['monitor']
        paths = write_table(runs, metric_columns(runs, monitor), args.out_dir or args.work_root)
    except AblationError as e:
        print(f'ablate.py: error: {e}', file=sys.stderr)
        return 2
    print(paths.pop('text'), end='')
    for kind, path in paths.items():
        print(f'[ablate] {kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
