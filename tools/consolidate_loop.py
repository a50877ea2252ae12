"""The consolidation loop: train a teacher -> consolidate -> retrain a student, for N rounds.

Round 0 trains ``TEACHER`` (e.g. the masked union model with ``CrossSourcePaste``,
configs/consolidate/). Each round k >= 1 then

1. consolidates every training source of ``TEACHER`` (the original, partially labelled
   files) with the previous round's model
   (``tools/consolidate.py``: pseudo boxes where the score reaches ``high``, ignore
   regions between ``low`` and ``high``); with ``--held-out`` each class's ``high`` is
   tuned to ``--target-precision`` on fully labelled held-out images first, and with
   ``--calibrate-boxes`` each class's pseudo boxes corrected by their median offset to
   the held-out objects;
2. trains ``STUDENT`` on those files (``tools/train.py``; the student config's training
   sources get their ``ann_file`` replaced by ``<work-dir>/round<k>/consolidated/
   <source>_consolidated.json``, and their ``metainfo.classes`` by the classes that count
   as annotated there: the source's own, plus each class whose threshold could be tuned;
   a class no threshold makes precise enough stays masked where it is not owned);

so round k+1 consolidates with round k's student, the better model. Every step is a stock
entry point run as its own process; ``--cfg-options`` go to every training run.
``<work-dir>/loop.json`` lists each round's config, checkpoint, tuned thresholds and
pseudo-label counts (machine-readable); the consolidated files stay in each round's folder.

``--resume`` continues a loop cut off anywhere (same work dir, same settings; ``--rounds``
may grow): every finished step is kept (a training that finished leaves
``train_done.json``, a consolidation its ``summary.json``, written last), and a training
cut off mid-way continues from its last checkpoint (``tools/train.py --resume``).

Example (generated data under data/synthetic, as the configs expect)::

    python tools/generate_data.py data/synthetic --num-train 400 --num-val 50
    python tools/consolidate_loop.py \
        configs/consolidate/masked-union-paste_retinanet_r18_fpn_1xb8-4e_synthetic.py \
        configs/consolidate/masked-union-paste_retinanet_r18_fpn_1xb8-4e_synthetic-consolidated.py \
        --work-dir work_dirs/loop --rounds 2 --calibrate-boxes \
        --held-out \
          person=data/synthetic/annotations/person_val_full.json:data/synthetic/images/person \
          animal=data/synthetic/annotations/animal_val_full.json:data/synthetic/images/animal
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('teacher', help='config of the round-0 model (a MultiSourceDataset)')
    parser.add_argument('student', help='config of the model retrained on consolidated files')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--rounds', type=int, default=2, help='consolidate + retrain rounds')
    parser.add_argument('--held-out', nargs='+', default=[],
                        metavar='[SOURCE=]ANN_JSON:IMG_DIR',
                        help='fully labelled held-out images: tune each class\'s high '
                        'threshold there. SOURCE=: images of that source, tuning only the '
                        'classes it does not annotate (where its pseudo boxes go); without '
                        'it: every class, all files together')
    parser.add_argument('--target-precision', type=float, default=0.8)
    parser.add_argument('--high', type=float, default=0.5, help='untuned high threshold')
    parser.add_argument('--low', type=float, default=0.2, help='ignore regions above this')
    parser.add_argument('--calibrate-boxes', action='store_true',
                        help='with --held-out: correct each class\'s pseudo boxes by its median '
                        'box offset to the held-out objects (tools/consolidate.py '
                        '--calibrate-boxes)')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to every tools/train.py run')
    parser.add_argument('--resume', action='store_true',
                        help='continue the loop in --work-dir: keep its finished steps')
    return parser.parse_args(argv)


# the settings a resumed loop must share with the run it continues (--rounds may grow)
RESUME_KEYS = ('teacher', 'student', 'held_out', 'target_precision', 'high', 'low',
               'calibrate_boxes', 'cfg_options')
# settings added after loops were first written: their value in an older loop.json
ADDED_SETTINGS = dict(calibrate_boxes=False)


def check_resume(args: argparse.Namespace) -> Optional[str]:
    """With ``--resume``: the first setting that differs from the loop being continued."""
    path = osp.join(args.work_dir, 'loop.json')
    if not args.resume or not osp.isfile(path):
        return None
    with open(path) as f:
        before = json.load(f)['settings']
    for key in RESUME_KEYS:
        now = osp.abspath(getattr(args, key)) if key in ('teacher', 'student') else \
            getattr(args, key)
        was = osp.abspath(before[key]) if key in ('teacher', 'student') else \
            before.get(key, ADDED_SETTINGS.get(key))
        if now != was:
            return (f'--resume: {key} is {now!r} but the loop in {args.work_dir} ran with '
                    f'{was!r}; give the same settings, or a new --work-dir')
    return None


def check_args(args: argparse.Namespace) -> Optional[str]:
    """The first problem with the arguments, or None."""
    for what in ('teacher', 'student'):
        if not osp.isfile(getattr(args, what)):
            return f'{what} config {getattr(args, what)!r} does not exist'
    if args.rounds < 1:
        return f'--rounds must be >= 1, but got {args.rounds}'
    if not 0 < args.target_precision <= 1:
        return f'--target-precision must be in (0, 1], but got {args.target_precision}'
    if not 0 <= args.low <= args.high <= 1:
        return f'need 0 <= --low <= --high <= 1, but got {args.low}, {args.high}'
    if args.calibrate_boxes and not args.held_out:
        return '--calibrate-boxes fits on fully labelled images: give --held-out'
    named = [_source_of(item)[0] != '' for item in args.held_out]
    if any(named) and not all(named):
        return '--held-out: give SOURCE= on every item or on none'
    for item in args.held_out:
        ann, _, img = _source_of(item)[1].partition(':')
        if not osp.isfile(ann) or not osp.isdir(img):
            return f'--held-out wants ANN_JSON:IMG_DIR of existing paths, but got {item!r}'
    return None


def _source_of(item: str) -> tuple:
    """``('person', 'a.json:img')`` of ``'person=a.json:img'``; ``('', item)`` without."""
    return tuple(item.split('=', 1)) if '=' in item.split(':', 1)[0] else ('', item)


def merge_held_out(items: List[str], out: str) -> str:
    """One COCO file of all held-out files (image ids renumbered, absolute image paths,
    categories matched by name), for ``tools/consolidate.py --tune-on``."""
    images, anns, categories = [], [], None
    for item in items:
        ann, _, img_dir = item.partition(':')
        with open(ann) as f:
            coco = json.load(f)
        if categories is None:
            categories = coco['categories']
        names = {c['id']: c['name'] for c in coco['categories']}
        cat_id = {c['name']: c['id'] for c in categories}
        missing = sorted(set(names.values()) - set(cat_id))
        if missing:
            raise ValueError(f'--held-out {ann!r} has classes {missing} the first file has not')
        new_id = {}
        for im in coco['images']:
            new_id[im['id']] = len(images) + 1
            images.append(dict(im, id=new_id[im['id']], file_name=osp.abspath(
                osp.join(img_dir, im['file_name']))))
        for a in coco['annotations']:
            anns.append(dict(a, id=len(anns) + 1, image_id=new_id[a['image_id']],
                             category_id=cat_id[names[a['category_id']]]))
    with open(out, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=categories), f)
    return out


def run(cmd: List[str], log: str) -> None:
    """Run one stock entry point; on failure, show the end of its log and stop."""
    print(f'[loop] {" ".join(cmd[1:])}', flush=True)
    start = time.time()
    with open(log, 'w') as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f'[loop] failed ({code}) after {time.time() - start:.0f} s, see {log}:'
                         f'\n{tail}')
    print(f'[loop]   done in {time.time() - start:.0f} s', flush=True)


def train(config: str, work_dir: str, cfg_options: List[str], resume: bool = False) -> str:
    """``tools/train.py`` one model; its last checkpoint. With ``resume``: a training that
    finished is kept, one cut off continues from its last checkpoint."""
    done = osp.join(work_dir, 'train_done.json')
    if resume and osp.isfile(done):
        with open(done) as f:
            checkpoint = json.load(f)['checkpoint']
        print(f'[loop] kept: {checkpoint}', flush=True)
        return checkpoint
    os.makedirs(work_dir, exist_ok=True)
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir]
    if resume and osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    run(cmd, osp.join(work_dir, 'train.log'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    with open(done, 'w') as f:
        json.dump(dict(checkpoint=checkpoint, config=config), f)
    return checkpoint


def consolidate(config: str, checkpoint: str, out_dir: str, args: argparse.Namespace,
                held_out: List[str]) -> dict:
    """``tools/consolidate.py`` the training sources; its summary (with ``args.resume``, a
    finished consolidation's: ``summary.json`` is written last)."""
    summary = osp.join(out_dir, 'summary.json')
    if args.resume and osp.isfile(summary):
        print(f'[loop] kept: {summary}', flush=True)
        with open(summary) as f:
            return json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    cmd = [sys.executable, osp.join(REPO, 'tools/consolidate.py'), config, checkpoint,
           '--out-dir', out_dir, '--high', str(args.high), '--low', str(args.low),
           '--target-precision', str(args.target_precision)]
    if held_out:
        cmd += ['--tune-on', *held_out]
    if args.calibrate_boxes:
        cmd.append('--calibrate-boxes')
    run(cmd, osp.join(out_dir, 'consolidate.log'))
    with open(osp.join(out_dir, 'summary.json')) as f:
        return json.load(f)


def student_classes(own: Dict[str, List[str]], classes: List[str],
                    tuned: Optional[Dict[str, Optional[float]]]) -> Dict[str, List[str]]:
    """Per source, the classes the student counts as annotated there: its own, plus every
    class whose threshold could be tuned to the target precision. A class that could not
    (``tuned[c] is None``) stays masked on the sources that do not own it: its few pseudo
    boxes are dropped and it gets no gradient there, instead of learning its missed
    objects as background. Without tuning (``tuned`` None) every class counts."""
    return {src: [c for c in classes if c in mine or tuned is None or
                  tuned.get(c) is not None] for src, mine in own.items()}


def student_config(student: str, consolidated: str, out: str,
                   classes: Optional[Dict[str, List[str]]] = None) -> str:
    """The student config with its training sources reading the consolidated files (and,
    given ``classes``, each source's ``metainfo.classes`` set to them)."""
    from mmengine.config import Config
    cfg = Config.fromfile(student)
    sources = cfg.train_dataloader.dataset.datasets
    for source in sources:
        inner = source if 'ann_file' in source else source['dataset']
        path = osp.join(osp.abspath(consolidated), f'{source["group_name"]}_consolidated.json')
        if not osp.isfile(path):
            raise SystemExit(f'[loop] no consolidated file for source '
                             f'{source["group_name"]!r}: {path}')
        inner['ann_file'] = path
        if classes is not None:
            inner['metainfo'] = dict(inner.get('metainfo') or {}, classes=tuple(
                classes[source['group_name']]))
    cfg.dump(out)
    return out


def own_classes(teacher: str) -> Dict[str, List[str]]:
    """Per training source of the teacher config, the classes it annotates."""
    from mmengine.config import Config
    sources = Config.fromfile(teacher).train_dataloader.dataset.datasets
    return {s['group_name']: list((s if 'ann_file' in s else s['dataset'])['metainfo']
                                  ['classes']) for s in sources}


def sources_config(model_config: str, teacher: str, out: str) -> str:
    """``model_config`` reading the teacher's (original, partially labelled) training
    sources: every round consolidates the original files with its newest model."""
    from mmengine.config import Config
    cfg = Config.fromfile(model_config)
    cfg.train_dataloader.dataset.datasets = Config.fromfile(
        teacher).train_dataloader.dataset.datasets
    cfg.dump(out)
    return out


def write_loop(args: argparse.Namespace, rounds: List[dict]) -> None:
    """``loop.json``: the settings (what ``--resume`` checks) and the finished rounds."""
    with open(osp.join(args.work_dir, 'loop.json'), 'w') as f:
        json.dump(dict(settings=vars(args), rounds=rounds), f, indent=1)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    args.work_dir = osp.abspath(args.work_dir)
    problem = check_args(args) or check_resume(args)
    if problem:
        print(f'consolidate_loop.py: error: {problem}', file=sys.stderr)
        return 2
    os.makedirs(args.work_dir, exist_ok=True)
    held_out = list(args.held_out)  # per source, or all merged into one file
    if held_out and not _source_of(held_out[0])[0]:
        held_out = [merge_held_out(held_out, osp.join(args.work_dir, 'held_out.json')) + ':']
    config = osp.abspath(args.teacher)
    checkpoint = train(config, osp.join(args.work_dir, 'round0'), args.cfg_options,
                       args.resume)
    rounds = [dict(round=0, config=config, checkpoint=checkpoint)]
    write_loop(args, rounds)
    for k in range(1, args.rounds + 1):
        folder = osp.join(args.work_dir, f'round{k}')
        os.makedirs(folder, exist_ok=True)
        readers = sources_config(config, args.teacher, osp.join(folder, 'consolidate_cfg.py'))
        summary = consolidate(readers, checkpoint, osp.join(folder, 'consolidated'), args,
                              held_out)
        annotated = student_classes(own_classes(args.teacher), summary['classes'],
                                    summary.get('tuned'))
        masked = {s: [c for c in summary['classes'] if c not in cls]
                  for s, cls in annotated.items()}
        if any(masked.values()):
            print(f'[loop] no threshold reaches the target precision; stays masked: {masked}')
        config = student_config(args.student, osp.join(folder, 'consolidated'),
                                osp.join(folder, 'student.py'), annotated)
        checkpoint = train(config, folder, args.cfg_options, args.resume)
        rounds.append(dict(round=k, config=config, checkpoint=checkpoint,
                           consolidated=osp.join(folder, 'consolidated'),
                           tuned=summary.get('tuned'),
                           box_calibration=summary.get('box_calibration'), masked=masked,
                           sources=summary.get('sources')))
        write_loop(args, rounds)
    print(f'[loop] {args.rounds} round(s); last model {checkpoint}; '
          f'{osp.join(args.work_dir, "loop.json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
