"""Export one head of a multi-head model as a stock mmdet / mmpose config + checkpoint.

The two files load and run with plain MMDetection / MMPose, the plugin absent
(``init_detector`` + ``inference_detector``, ``init_model`` + ``inference_topdown``, their
``tools/test.py``), with the same predictions as that head (see docs/checkpoints.md).

Example:
    python tools/export_head.py CONFIG CHECKPOINT --head person --out-dir exported/
"""
import argparse

from mmengine.config import Config, DictAction

import mtl_plugin  # noqa: F401  (registers the multi-head models the config builds)
from mtl_plugin.checkpoints import export_head


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export one head as a stock checkpoint')
    parser.add_argument('config', help='the multi-head config file')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('--head', required=True, help='the head to export, e.g. person')
    parser.add_argument('--out-dir', required=True, help='where to write <name>.py/.pth')
    parser.add_argument('--name', help='file name stem (default: <config stem>_<head>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        cfg_path, pth_path = export_head(cfg, args.checkpoint, args.head, args.out_dir,
                                         name=args.name)
    except (KeyError, TypeError, ValueError) as err:  # named in the message
        raise SystemExit(f'error: {err.args[0] if err.args else err}') from err
    print(f'config: {cfg_path}\ncheckpoint: {pth_path}')


if __name__ == '__main__':
    main()
