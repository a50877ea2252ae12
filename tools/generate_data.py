"""Generate a multi-source, partially labelled COCO dataset (see mtl_plugin.synthetic).

Example:
    python tools/generate_data.py data/synthetic --num-train 64 --seed 0
    python tools/generate_data.py /tmp/big --num-train 59000 --num-val 0 --num-test 0 --no-images
"""
import argparse
import time

from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--num-train', type=int, default=64, help='train images per source')
    parser.add_argument('--num-val', type=int, default=16, help='val images per source')
    parser.add_argument('--num-test', type=int, default=32, help='fully labelled test images')
    parser.add_argument('--img-size', type=int, default=128)
    parser.add_argument('--shared-look', action='store_true',
                        help='all sources share one look (background, scale)')
    parser.add_argument('--no-images', action='store_true', help='write annotations only')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = GeneratorConfig(num_train=args.num_train, num_val=args.num_val,
                          num_test=args.num_test, img_size=args.img_size,
                          shared_look=args.shared_look, write_images=not args.no_images,
                          seed=args.seed)
    start = time.perf_counter()
    files = generate_multi_source(args.out_dir, cfg)
    for key, path in files.items():
        print(f'{key:>14}: {path}')
    print(f'done in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
