"""Cost of group identity on a 118k-image COCO-style file (foundation issue, item 4).

Generates an annotation-only two-source file set (2 x 59,000 images, no JPEG written),
then, alternating in one process: builds the two mmdet ``CocoDataset`` sources alone vs the
``MultiSourceDataset`` over them (which also builds ``group_ids``), and counts image reads
(mmcv.imfrombytes / mmengine.fileio.get / cv2.imread are patched to count).

    python benchmarks/group_ids.py [--images-per-source 59000] [--repeats 3]
"""
import argparse
import os.path as osp
import sys
import tempfile
import time
from unittest import mock

import cv2
import numpy as np
import mmcv
import mmengine.fileio
from mmengine.registry import DATASETS, init_default_scope

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import mtl_plugin  # noqa: E402,F401
from common import print_table, save  # noqa: E402
from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = dict(person=('person', ), animal=('cat', 'bird'))


def sources(root):
    return [dict(type='CocoDataset', group_name=g, data_root=root,
                 ann_file=f'annotations/{g}_train.json', data_prefix=dict(img=f'images/{g}/'),
                 metainfo=dict(classes=c), filter_cfg=dict(filter_empty_gt=True), pipeline=[])
            for g, c in CLASSES.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images-per-source', type=int, default=59000)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/group_ids.json'))
    args = parser.parse_args()
    init_default_scope('mmdet')
    reads = []
    count = lambda *a, **k: reads.append(1)  # noqa: E731
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        generate_multi_source(root, GeneratorConfig(num_train=args.images_per_source, num_val=0,
                                                    num_test=0, write_images=False, seed=0))
        gen_s = time.perf_counter() - start
        plain, wrapped, group_ids_s = [], [], []
        with mock.patch.object(mmcv, 'imfrombytes', side_effect=count), \
                mock.patch.object(mmengine.fileio, 'get', side_effect=count), \
                mock.patch.object(cv2, 'imread', side_effect=count):
            for _ in range(args.repeats):
                start = time.perf_counter()
                for cfg in sources(root):
                    cfg.pop('group_name')
                    DATASETS.build(cfg).full_init()
                plain.append(time.perf_counter() - start)
                start = time.perf_counter()
                ds = DATASETS.build(dict(type='MultiSourceDataset', datasets=sources(root)))
                n = len(ds.group_ids)
                wrapped.append(time.perf_counter() - start)
                # what group_ids itself costs: the np.repeat over the sources' lengths
                lengths = [len(d) for d in ds.datasets]
                t0 = time.perf_counter()
                np.repeat(np.asarray(ds.group_id_list, dtype=np.int64), lengths)
                group_ids_s.append(time.perf_counter() - t0)
    row = dict(images=n, sources_alone_s=min(plain), multi_source_s=min(wrapped),
               overhead_pct=100 * (min(wrapped) / min(plain) - 1),
               group_ids_build_ms=1000 * min(group_ids_s),
               group_ids_pct=100 * min(group_ids_s) / min(plain), image_reads=len(reads),
               generate_s=gen_s)
    print_table('building datasets for a 118k-image file (min of repeats; goal: overhead < 5 %, '
                'zero image reads)', [row], list(row))
    save(args.out, dict(settings=vars(args), result=row))


if __name__ == '__main__':
    main()
