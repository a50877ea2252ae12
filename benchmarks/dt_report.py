"""Speed of the dataset report on a 118k-image COCO file set vs pycocotools' load alone.

Generates (once, annotation-only) the two-source file set of 2 x 59,000 images, then,
alternating in one process: ``COCO(path)`` of both files vs our full report of both
(``json.load`` + the numbers + ``report.json``, no PNG); the PNG charts are timed on their
own. Goal: report / load <= 3.

    python benchmarks/dt_report.py [--images-per-source 59000] [--repeats 3] [--data-dir D]
"""
import argparse
import contextlib
import io
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from pycocotools.coco import COCO  # noqa: E402

from common import print_table, save, time_alternating  # noqa: E402
from mtl_plugin.analysis.dataset_report import (AnnSource, build_report,  # noqa: E402
                                                plot_report, write_report)
from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
GROUPS = ('person', 'animal')


def _files(root: str, images_per_source: int):
    """The two train files under ``root`` (generated unless already of the right size)
    and whether they were reused."""
    files = {g: osp.join(root, 'annotations', f'{g}_train.json') for g in GROUPS}
    meta = osp.join(root, 'meta.json')
    if all(osp.isfile(p) for p in files.values()) and osp.isfile(meta):
        with open(files['person']) as f:  # cheap check of the image count
            if f'"file_name": "train_{images_per_source - 1:06d}.jpg"' in f.read():
                return files, True
    generate_multi_source(root, GeneratorConfig(num_train=images_per_source, num_val=0,
                                                num_test=0, write_images=False, seed=0))
    return files, False


def run(args: argparse.Namespace) -> dict:
    """Time both sides; returns the result row (seconds are medians of the repeats)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir or osp.join(tmp, 'data')
        start = time.perf_counter()
        files, reused = _files(root, args.images_per_source)
        gen_s = time.perf_counter() - start
        sources = [AnnSource(g, p) for g, p in files.items()]
        out_dir = osp.join(tmp, 'report')
        holder = {}

        def coco_load():
            with contextlib.redirect_stdout(io.StringIO()):  # COCO prints its progress
                for path in files.values():
                    COCO(path)

        def report():
            holder['report'] = build_report(sources)
            write_report(holder['report'], out_dir)

        times = time_alternating(dict(coco=coco_load, report=report), repeats=args.repeats,
                                 warmup=args.warmup)
        pngs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            plot_report(holder['report'], out_dir)
            pngs.append(time.perf_counter() - start)
    stats = holder['report']['sources']
    return dict(images=sum(s['num_images'] for s in stats.values()),
                annotations=sum(s['num_annotations'] for s in stats.values()),
                coco_load_s=times['coco'], report_s=times['report'],
                ratio=times['report'] / times['coco'], png_s=sorted(pngs)[len(pngs) // 2],
                ratio_with_png=(times['report'] + sorted(pngs)[len(pngs) // 2]) / times['coco'],
                generate_s=gen_s, data_reused=reused)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images-per-source', type=int, default=59000)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--data-dir', default=None,
                        help='reuse (or generate into) this folder; default: a temporary one')
    parser.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/dt_report.json'))
    return parser.parse_args(argv)


if __name__ == '__main__':
    args = parse_args()
    row = run(args)
    print_table('dataset report on 2 x 59k-image COCO files vs COCO(path) load (median of '
                f'{args.repeats} alternating runs; goal: ratio <= 3)', [row], list(row))
    save(args.out, dict(settings=vars(args), result=row))
