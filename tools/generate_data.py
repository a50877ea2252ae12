"""Generate a multi-source, partially labelled COCO dataset (see mtl_plugin.synthetic).

With ``--classification``: single-object classification images per source instead
(``annotations/cls_<source>_{train,val}.json``; counts are per class, 64 px by default).

Example:
    python tools/generate_data.py data/synthetic --num-train 64 --seed 0
    python tools/generate_data.py /tmp/big --num-train 59000 --num-val 0 --num-test 0 --no-images
    python tools/generate_data.py data/synthetic_cls --classification --num-train 32
"""
import argparse
import sys
import time

from mtl_plugin.synthetic import (ClsGeneratorConfig, GeneratorConfig, generate_classification,
                                  generate_multi_source)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--classification', action='store_true',
                        help='write single-object classification data (cls_<source>_*.json)')
    parser.add_argument('--num-train', type=int, default=None,
                        help='train images per source (default 64); per class with '
                        '--classification (default 32)')
    parser.add_argument('--num-val', type=int, default=None,
                        help='val images per source (default 16); per class with '
                        '--classification (default 8)')
    parser.add_argument('--num-test', type=int, default=None,
                        help='fully labelled test images (default 32; not with --classification)')
    parser.add_argument('--img-size', type=int, default=None,
                        help='image side (default 128; 64 with --classification)')
    parser.add_argument('--shared-look', action='store_true',
                        help='all sources share one look (background, scale)')
    parser.add_argument('--no-images', action='store_true', help='write annotations only')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def _given(args: argparse.Namespace, **defaults) -> dict:
    """The counts / sizes given on the command line, else ``defaults``."""
    return {k: v if getattr(args, k) is None else getattr(args, k) for k, v in defaults.items()}


def _classification(args: argparse.Namespace) -> dict:
    for flag, value in (('--num-test', args.num_test), ('--no-images', args.no_images or None)):
        if value is not None:
            raise ValueError(f'{flag} does not apply to --classification')
    cfg = ClsGeneratorConfig(**_given(args, num_train=32, num_val=8, img_size=64),
                             shared_look=args.shared_look, seed=args.seed)
    return generate_classification(args.out_dir, cfg)


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    try:
        if args.classification:
            files = _classification(args)
        else:
            cfg = GeneratorConfig(**_given(args, num_train=64, num_val=16, num_test=32,
                                           img_size=128),
                                  shared_look=args.shared_look, write_images=not args.no_images,
                                  seed=args.seed)
            files = generate_multi_source(args.out_dir, cfg)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
    for key, path in files.items():
        print(f'{key:>14}: {path}')
    print(f'done in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
