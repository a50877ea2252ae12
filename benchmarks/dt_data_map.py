"""Benchmark the step-time overhead of DataMapHook's recording (issue 6, item 4; goal <= 5 %).

The demo multi-head RetinaNet-R18 (configs/demo, 128 px, batch 8) on generated data: in one
process, train steps with the recorder on and off alternate (medians of ``--repeats`` timed
steps each, after warm-up). Measured twice: at initialisation (RetinaNet's prior makes
every anchor score ~0.01, so the recording's score_thr=0.01 lets thousands of boxes into
NMS) and after ``--train-iters`` ordinary steps. The recording part alone (decode + NMS +
matching, on the same head outputs) is timed too: ``recording_pct`` (its median over the
median step without recording) is less sensitive to a busy machine than the difference of
two step medians.

Usage:
    python benchmarks/dt_data_map.py [--repeats 9] [--train-iters 60] [--device cuda]
    OMP_NUM_THREADS=1 python benchmarks/dt_data_map.py --clock cpu   # on a busy machine
"""
import argparse
import contextlib
import copy
import os.path as osp
import sys
import tempfile
import time

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DATASETS, MODELS, init_default_scope

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import mtl_plugin  # noqa: E402,F401
from common import print_table, save, time_alternating  # noqa: E402

CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)


def _alternate_cpu(fns, repeats: int, warmup: int = 2) -> dict:
    """``time_alternating`` on this process's CPU time (robust to other processes on a
    shared machine; equals compute time with one thread)."""
    return time_alternating(fns, repeats, warmup, clock=time.process_time)
from mtl_plugin.engine.hooks.data_map import DataMapRecorder  # noqa: E402
from mtl_plugin.synthetic import GeneratorConfig, generate_multi_source  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(REPO, 'configs/demo/multihead_retinanet_r18_fpn_1xb8-4e_synthetic.py')


def _point_to(node, root: str, scale: int) -> None:
    if isinstance(node, dict):
        if node.get('type') == 'CocoDataset':
            node['data_root'] = root + '/'
        if node.get('type') == 'Resize':
            node['scale'] = (scale, scale)
        for v in node.values():
            _point_to(v, root, scale)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _point_to(v, root, scale)


def build(root: str, device: str, scale: int = 128):
    """Demo model, optimizer wrapper, and batches of the demo's train pipeline."""
    cfg = Config.fromfile(DEMO)
    init_default_scope('mmdet')
    _point_to(cfg.train_dataloader, root, scale)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    bs = cfg.train_dataloader.batch_size
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(dataset), generator=g).tolist()
    batches = [pseudo_collate([dataset[i] for i in order[k:k + bs]])
               for k in range(0, len(order) - bs + 1, bs)]
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)
    model.init_weights()
    model.dataset_meta = dataset.metainfo
    model.train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, wrapper, batches


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def measure(model, wrapper, batches, recorder, repeats: int, device: str,
            clock: str = 'wall') -> dict:
    """Median step seconds with the recorder on / off, and the recording part alone."""
    state = dict(i=0)

    def step(rec):
        def run():
            with contextlib.ExitStack() as stack:
                if rec is not None:
                    stack.enter_context(model.recording(rec))
                model.train_step(copy.deepcopy(batches[state['i'] % len(batches)]), wrapper)
            state['i'] += 1
            _sync(device)
        return run

    # rows stay in the recorder, as during an epoch (the hook pops them once per epoch)
    fns = dict(off=step(None), on=step(recorder))
    times = time_alternating(fns, repeats=repeats) if clock == 'wall' else \
        _alternate_cpu(fns, repeats)
    recorder.pop()
    recording = record_only(model, batches[0], recorder, repeats, device, clock)
    return dict(step_off_s=times['off'], step_on_s=times['on'],
                overhead_pct=100 * (times['on'] - times['off']) / times['off'],
                recording_s=recording, recording_pct=100 * recording / times['off'])


@torch.no_grad()
def record_only(model, batch, recorder, repeats: int, device: str,
                clock: str = 'wall') -> float:
    """Median seconds of predict_by_feat + gold matching of every head on one batch."""
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    x = model.extract_feat(data['inputs'])
    plan = []
    for name, idx in model.route(data['data_samples']).items():
        head = model.heads[name]
        samples = [data['data_samples'][i] for i in idx]
        metas = [s.metainfo for s in samples]
        plan.append((head, head(model._select(x, idx)), samples, metas))
    spent = []
    for _ in range(repeats + 1):
        _sync(device)
        start = CLOCKS[clock]()
        for head, outs, samples, metas in plan:
            preds = head.predict_by_feat(*outs, batch_img_metas=metas,
                                         cfg=recorder.predict_cfg(head.test_cfg))
            recorder.record_detections(samples, samples, preds)
        recorder.pop()
        _sync(device)
        spent.append(CLOCKS[clock]() - start)
    return sorted(spent[1:])[len(spent[1:]) // 2]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=9, help='timed steps per setting')
    parser.add_argument('--train-iters', type=int, default=60,
                        help='ordinary steps between the two measurements')
    parser.add_argument('--scale', type=int, default=128,
                        help='input side (the demo: 128; larger shows how the cost scales)')
    parser.add_argument('--nms-pre', type=int, default=200,
                        help="the recorder's cap on candidates per level before NMS")
    parser.add_argument('--clock', choices=sorted(CLOCKS), default='wall',
                        help='wall time, or CPU time of this process (robust on a shared '
                        'machine; use with OMP_NUM_THREADS=1)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', default=osp.join(REPO, 'benchmarks/results/dt_data_map.json'))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        generate_multi_source(root, GeneratorConfig(num_train=32, num_val=0, num_test=0,
                                                    seed=0))
        model, wrapper, batches = build(root, args.device, args.scale)
        recorder = DataMapRecorder(nms_pre=args.nms_pre)
        rows = [dict(state='init', **measure(model, wrapper, batches, recorder, args.repeats,
                                             args.device, args.clock))]
        for i in range(args.train_iters):
            model.train_step(copy.deepcopy(batches[i % len(batches)]), wrapper)
        rows.append(dict(state=f'after {args.train_iters} steps',
                         **measure(model, wrapper, batches, recorder, args.repeats,
                                   args.device, args.clock)))
    print_table(f'DataMapHook recording overhead ({args.device}, {torch.get_num_threads()} '
                f'threads, {args.clock} clock, demo RetinaNet-R18 {args.scale} px, batch 8, '
                f'nms_pre {args.nms_pre}; goal <= 5 %)', rows,
                ['state', 'step_off_s', 'step_on_s', 'overhead_pct', 'recording_s',
                 'recording_pct'])
    result = dict(settings=dict(vars(args), threads=torch.get_num_threads()), results=rows)
    save(args.out, result)
    return result


if __name__ == '__main__':
    main()
