import hashlib
import json
import os

import pytest

from mtl_plugin.synthetic import GeneratorConfig, SourceSpec, generate_multi_source


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            with open(os.path.join(dirpath, f), 'rb') as fh:
                h.update(f.encode() + fh.read())
    return h.hexdigest()


def test_deterministic_by_seed(tmp_path):
    cfg = dict(num_train=3, num_val=2, num_test=2, img_size=64)
    generate_multi_source(str(tmp_path / 'a'), GeneratorConfig(seed=1, **cfg))
    generate_multi_source(str(tmp_path / 'b'), GeneratorConfig(seed=1, **cfg))
    generate_multi_source(str(tmp_path / 'c'), GeneratorConfig(seed=2, **cfg))
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b')
    assert _digest(tmp_path / 'a') != _digest(tmp_path / 'c')


def test_partial_labels(synthetic_root):
    meta = json.load(open(os.path.join(synthetic_root, 'meta.json')))
    assert meta['sources'] == dict(person=['person'], animal=['cat', 'bird'])
    person, animal, full = (json.load(open(os.path.join(synthetic_root, meta['files'][k])))
                            for k in ('person_train', 'animal_train', 'test_full'))
    assert [c['name'] for c in person['categories']] == ['person']
    assert [c['name'] for c in animal['categories']] == ['cat', 'bird']
    assert [c['name'] for c in full['categories']] == ['person', 'cat', 'bird']
    for coco in (person, animal):
        assert len(coco['images']) == 16
        assert {a['image_id'] for a in coco['annotations']} == {i['id'] for i in coco['images']}
        ann = coco['annotations'][0]
        assert len(ann['keypoints']) == 12 and ann['num_keypoints'] == 4
    # the fully labelled test split mixes both looks and holds every class
    assert {i['source'] for i in full['images']} == {'person', 'animal'}
    assert {a['category_id'] for a in full['annotations']} == {1, 2, 3}


def test_annotation_only_mode_writes_no_image(tmp_path):
    files = generate_multi_source(str(tmp_path), GeneratorConfig(
        num_train=5, num_val=0, num_test=0, write_images=False))
    assert not (tmp_path / 'images').exists()
    assert len(json.load(open(files['person_train']))['images']) == 5


@pytest.mark.parametrize('kwargs, match', [
    (dict(sources=[SourceSpec('a', ('x', )), SourceSpec('a', ('y', ))]), 'unique'),
    (dict(sources=[SourceSpec('a', ('x', )), SourceSpec('b', ('x', ))]), 'one source'),
    (dict(num_train=-1), 'num_train'),
    (dict(max_own=0), 'max_own'),
])
def test_bad_settings(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_multi_source(str(tmp_path), GeneratorConfig(**kwargs))
