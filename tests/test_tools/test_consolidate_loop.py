"""tools/consolidate_loop.py: train -> consolidate -> retrain through the stock entry
points, and its argument checks."""
import json
import os
import os.path as osp

import pytest

from conftest import PYTHON, REPO, load_tool, run_tool

TEACHER = 'configs/consolidate/masked-union-paste_retinanet_r18_fpn_1xb8-4e_synthetic.py'
STUDENT = TEACHER.replace('.py', '-consolidated.py')


def _loop():
    return load_tool('tools/consolidate_loop.py')


def _json(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize('extra, message', [
    (['--rounds', '0'], '--rounds must be >= 1'),
    (['--low', '0.6', '--high', '0.5'], 'need 0 <= --low <= --high <= 1'),
    (['--held-out', 'nowhere.json:nowhere'], '--held-out wants ANN_JSON:IMG_DIR'),
    (['--target-precision', '0'], '--target-precision must be in (0, 1]'),
    (['--calibrate-boxes'], '--calibrate-boxes fits on fully labelled images: give --held-out'),
    (['--held-out', f'person={REPO}/README.md:{REPO}', f'{REPO}/README.md:{REPO}'],
     'give SOURCE= on every item or on none')])
def test_bad_arguments_stop_before_any_training(tmp_path, capsys, extra, message):
    work = tmp_path / 'w'
    assert _loop().main([osp.join(REPO, TEACHER), osp.join(REPO, STUDENT), '--work-dir',
                         str(work), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not work.exists()


def test_held_out_files_merge_by_class_name(synthetic_root, tmp_path):
    root = synthetic_root
    items = [f'{root}/annotations/{s}_val_full.json:{root}/images/{s}'
             for s in ('person', 'animal')]
    merged = _json(_loop().merge_held_out(items, str(tmp_path / 'held.json')))
    parts = [_json(f'{root}/annotations/{s}_val_full.json') for s in ('person', 'animal')]
    assert len(merged['images']) == sum(len(p['images']) for p in parts)
    assert [im['id'] for im in merged['images']] == list(range(1, len(merged['images']) + 1))
    assert all(osp.isfile(im['file_name']) for im in merged['images'])
    names = {c['id']: c['name'] for c in merged['categories']}
    expected = sorted((osp.basename(im['file_name']), names_p[a['category_id']])
                      for p in parts for names_p in [{c['id']: c['name']
                                                      for c in p['categories']}]
                      for a in p['annotations'] for im in p['images']
                      if im['id'] == a['image_id'])
    by_id = {im['id']: im for im in merged['images']}
    assert sorted((osp.basename(by_id[a['image_id']]['file_name']), names[a['category_id']])
                  for a in merged['annotations']) == expected


@pytest.mark.slow
def test_one_round_consolidates_the_original_files_and_retrains_on_them(synthetic_root,
                                                                        tmp_path):
    os.makedirs(tmp_path / 'data')
    os.symlink(synthetic_root, tmp_path / 'data/synthetic')  # where the configs look
    held = [f'{s}=data/synthetic/annotations/{s}_val_full.json:data/synthetic/images/{s}'
            for s in ('person', 'animal')]
    run_tool([PYTHON, osp.join(REPO, 'tools/consolidate_loop.py'), osp.join(REPO, TEACHER),
              osp.join(REPO, STUDENT), '--work-dir', 'loop', '--rounds', '1', '--held-out',
              *held, '--calibrate-boxes', '--cfg-options', 'train_cfg.max_epochs=1',
              'train_cfg.val_interval=5'], cwd=str(tmp_path))
    loop = _json(tmp_path / 'loop/loop.json')
    assert [r['round'] for r in loop['rounds']] == [0, 1]
    assert all(osp.isfile(r['checkpoint']) for r in loop['rounds'])
    assert set(loop['rounds'][1]['tuned']) == {'person', 'cat', 'bird'}
    # one correction (or None: too few confident matches) per class, recorded
    assert set(loop['rounds'][1]['box_calibration']) == {'person', 'cat', 'bird'}
    student = open(loop['rounds'][1]['config']).read()
    for source in ('person', 'animal'):
        path = osp.join(loop['rounds'][1]['consolidated'], f'{source}_consolidated.json')
        assert repr(path) in student  # the student trains on this round's files
        partial = _json(f'{synthetic_root}/annotations/{source}_train.json')
        new = _json(path)
        assert [c['name'] for c in new['categories']] == ['person', 'cat', 'bird']
        own = [a for a in new['annotations'] if not a.get('pseudo')]
        assert len(own) == len(partial['annotations'])  # the original GT, kept as it was


def test_a_class_no_threshold_makes_precise_stays_masked_where_it_is_not_owned(tmp_path):
    loop = _loop()
    own = loop.own_classes(osp.join(REPO, TEACHER))
    assert own == dict(person=['person'], animal=['cat', 'bird'])
    classes = ['person', 'cat', 'bird']
    assert loop.student_classes(own, classes, dict(person=0.4, cat=None, bird=0.3)) == dict(
        person=['person', 'bird'], animal=['person', 'cat', 'bird'])
    assert loop.student_classes(own, classes, None) == dict(person=classes, animal=classes)
    for s in ('person', 'animal'):
        (tmp_path / f'{s}_consolidated.json').write_text('{}')
    path = loop.student_config(osp.join(REPO, STUDENT), str(tmp_path), str(tmp_path / 's.py'),
                               dict(person=['person', 'bird'], animal=classes))
    from mmengine.config import Config
    sources = Config.fromfile(path).train_dataloader.dataset.datasets
    assert [tuple(s.metainfo.classes) for s in sources] == [('person', 'bird'), tuple(classes)]
    assert [s.ann_file for s in sources] == [str(tmp_path / f'{s}_consolidated.json')
                                             for s in ('person', 'animal')]


def _fake_steps(loop, monkeypatch, calls, fail_at=None):
    """``run`` replaced by stand-ins of tools/train.py and tools/consolidate.py that write
    what the real ones leave; ``fail_at``: the command (index) that is cut off, after its
    training wrote a first checkpoint (once)."""
    cut = [fail_at]

    def fake(cmd, log):
        calls.append(cmd)
        out = cmd[cmd.index('--work-dir' if 'train.py' in cmd[1] else '--out-dir') + 1]
        os.makedirs(out, exist_ok=True)
        if 'train.py' in cmd[1]:
            (open(osp.join(out, 'last_checkpoint'), 'w')).write(osp.join(out, 'epoch_1.pth'))
            if len(calls) - 1 == cut[0]:
                cut[0] = None
                raise SystemExit('[loop] failed (cut off)')
            return
        for s in ('person', 'animal'):
            open(osp.join(out, f'{s}_consolidated.json'), 'w').write('{}')
        with open(osp.join(out, 'summary.json'), 'w') as f:
            json.dump(dict(classes=['person', 'cat', 'bird'], tuned=None), f)
    monkeypatch.setattr(loop, 'run', fake)


def test_resume_keeps_finished_steps_and_continues_the_cut_off_training(tmp_path,
                                                                        monkeypatch):
    loop = _loop()
    argv = [osp.join(REPO, TEACHER), osp.join(REPO, STUDENT), '--work-dir', str(tmp_path),
            '--rounds', '2']
    calls = []
    _fake_steps(loop, monkeypatch, calls, fail_at=2)  # train 0, consolidate 1, train 1 cut
    with pytest.raises(SystemExit, match='cut off'):
        loop.main(argv)
    steps = [osp.basename(c[1]) for c in calls]
    assert steps == ['train.py', 'consolidate.py', 'train.py']
    calls.clear()
    assert loop.main(argv + ['--resume']) == 0
    # round 0 and round 1's consolidation kept; round 1's training continues (--resume);
    # round 2 runs from the start
    assert [(osp.basename(c[1]), '--resume' in c) for c in calls] == [
        ('train.py', True), ('consolidate.py', False), ('train.py', False)]
    assert calls[0][calls[0].index('--work-dir') + 1] == str(tmp_path / 'round1')
    done = _json(tmp_path / 'loop.json')
    assert [r['round'] for r in done['rounds']] == [0, 1, 2]
    assert done['rounds'][0]['checkpoint'] == str(tmp_path / 'round0/epoch_1.pth')
    calls.clear()  # everything finished: a resume with one more round runs only that
    assert loop.main(argv[:-1] + ['3', '--resume']) == 0
    assert [osp.basename(c[1]) for c in calls] == ['consolidate.py', 'train.py']


def test_resume_refuses_other_settings(tmp_path, monkeypatch, capsys):
    loop = _loop()
    argv = [osp.join(REPO, TEACHER), osp.join(REPO, STUDENT), '--work-dir', str(tmp_path),
            '--rounds', '1']
    _fake_steps(loop, monkeypatch, [])
    assert loop.main(argv) == 0
    assert loop.main(argv + ['--resume', '--high', '0.6']) == 2
    assert ("--resume: high is 0.6 but the loop in " f"{tmp_path} ran with 0.5; give the same "
            "settings, or a new --work-dir") in capsys.readouterr().err


@pytest.mark.slow
def test_teacher_config_at_mmdet_doors(synthetic_root, tmp_path):
    """The loop's teacher config (masked union head + CrossSourcePaste) through mmdet's own
    tools/train.py and tools/test.py --show-dir, and its checkpoint through DetInferencer:
    one label space over every source's classes."""
    import glob

    import mmdet
    from mmdet.apis import DetInferencer
    stock = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
    os.makedirs(tmp_path / 'data')
    os.symlink(synthetic_root, tmp_path / 'data/synthetic')  # where the configs look
    work = str(tmp_path / 'work')
    res = run_tool([PYTHON, osp.join(stock, 'train.py'), osp.join(REPO, TEACHER), '--work-dir',
                    work, '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=5'],
                   cwd=str(tmp_path))
    assert 'Epoch(train) [1]' in res.stdout + res.stderr
    ckpt = osp.join(work, 'epoch_1.pth')
    res = run_tool([PYTHON, osp.join(stock, 'test.py'), osp.join(REPO, TEACHER), ckpt,
                    '--work-dir', work, '--show-dir', 'vis'], cwd=str(tmp_path))
    assert 'bbox_mAP' in res.stdout + res.stderr
    assert glob.glob(osp.join(work, '*', 'vis', '*.jpg'))
    inferencer = DetInferencer(model=osp.join(REPO, TEACHER), weights=ckpt, device='cpu')
    img = sorted(glob.glob(osp.join(synthetic_root, 'images', 'test', '*.jpg')))[0]
    out = str(tmp_path / 'inferencer')
    result = inferencer(img, out_dir=out, no_save_pred=False)
    assert set(inferencer.model.dataset_meta['classes']) == {'person', 'cat', 'bird'}
    assert all(0 <= label < 3 for label in result['predictions'][0]['labels'])
    assert glob.glob(osp.join(out, 'vis', '*.jpg'))
