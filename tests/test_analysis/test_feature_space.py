"""Feature-space analysis: metrics on known structure, RoI / pooling geometry, the CLI."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample
from torch import nn

import tiny_models
from conftest import PYTHON, REPO, run_tool
from mtl_plugin.analysis.feature_space import (FeatureSpaceError, cluster_metrics, domain_gap,
                                               extract_features, fisher_ratio, pick_indices)
from mtl_plugin.labels import LabelSpace

TOOL = osp.join(REPO, 'tools', 'analysis', 'feature_space.py')


def _tool():
    spec = importlib.util.spec_from_file_location('feature_space_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------- metrics
def test_fisher_ratio_four_points_by_hand():
    # a: (0,0),(0,2) -> mu_a=(0,1); b: (4,0),(4,2) -> mu_b=(4,1); mu=(2,1)
    # tr S_W = 4 * 1^2 = 4; tr S_B = 2*|(-2,0)|^2 + 2*|(2,0)|^2 = 16
    x = np.array([[0, 0], [0, 2], [4, 0], [4, 2]], dtype=float)
    labels = np.array(['a', 'a', 'b', 'b'])
    assert fisher_ratio(x, labels) == 4.0
    m = cluster_metrics(x, labels)
    assert m['spread'] == {'a': 1.0, 'b': 1.0}
    assert m['centroid_distances'] == [[0.0, 4.0], [4.0, 0.0]]
    assert m['counts'] == [2, 2] and m['fisher_ratio'] == 4.0
    # each point: a = 2 (own cluster), b = sqrt(16 + {0,4}) mean -> (4 + sqrt(20)) / 2
    b = (4 + np.sqrt(20)) / 2
    assert m['silhouette'] == pytest.approx((b - 2) / b, abs=1e-12)
    assert fisher_ratio(np.array([[0.0], [1.0]]), np.array(['a', 'b'])) is None  # S_W = 0


def test_separated_blobs_and_identical_distributions():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(0, 0.1, (60, 8)), rng.normal(50, 0.1, (60, 8))])
    groups = np.array(['coco'] * 60 + ['ap10k'] * 60)
    m = cluster_metrics(blobs, groups)
    assert m['silhouette'] > 0.99 and m['davies_bouldin'] < 0.01 and m['fisher_ratio'] > 1e4
    gap = domain_gap(blobs, groups)
    assert gap['balanced_accuracy'] == 1.0 and gap['chance'] == 0.5 and gap['folds'] == 5

    same = rng.normal(0, 1, (400, 8))
    groups = np.array(['coco', 'ap10k'] * 200)
    gap = domain_gap(same, groups)
    assert abs(gap['balanced_accuracy'] - gap['chance']) < 0.08
    assert abs(cluster_metrics(same, groups)['silhouette']) < 0.02
    three = np.array(['a', 'b', 'c'] * 20)
    assert domain_gap(rng.normal(0, 1, (60, 4)), three)['chance'] == pytest.approx(1 / 3)


def test_degenerate_inputs_are_reported_not_crashed():
    gap = domain_gap(np.zeros((3, 2)), np.array(['a', 'a', 'a']))
    assert gap['balanced_accuracy'] is None and 'at least 2 datasets' in gap['reason']
    gap = domain_gap(np.zeros((3, 2)), np.array(['a', 'a', 'b']))
    assert gap['balanced_accuracy'] is None and 'at least 2 images' in gap['reason']
    assert cluster_metrics(np.zeros((0, 4)), np.array([])) is None
    one = cluster_metrics(np.ones((3, 2)), np.array(['a'] * 3))
    assert one['silhouette'] is None and one['spread'] == {'a': 0.0}
    with pytest.raises(FeatureSpaceError, match='3 feature rows but 2 labels'):
        cluster_metrics(np.zeros((3, 2)), np.array(['a', 'b']))


def test_pick_indices_round_robin_over_groups():
    ids = np.array([0, 0, 0, 0, 1, 1, 2])
    assert pick_indices(ids, 4) == [0, 1, 4, 6]
    assert pick_indices(ids, 5) == [0, 1, 4, 5, 6]
    assert pick_indices(ids, None) == list(range(7))


# ---------------------------------------------------------------------- geometry
class CoordModel(nn.Module):
    """extract_feat -> (B, 2, H/8, W/8): channel 0 = x, channel 1 = y of each cell's centre
    in input pixels (linear maps, so RoIAlign of a box averages to its centre)."""

    def __init__(self):
        super().__init__()
        self.data_preprocessor = DetDataPreprocessor(pad_size_divisor=32)

    def extract_feat(self, inputs):
        b, _, h, w = inputs.shape
        xs = (torch.arange(w // 8) + 0.5) * 8
        ys = (torch.arange(h // 8) + 0.5) * 8
        grid = torch.stack([xs.expand(h // 8, -1), ys[:, None].expand(-1, w // 8)])
        return (grid.expand(b, -1, -1, -1).contiguous(), )


class TwoImageSource:
    """Image 0 (group a): 96 x 128 original, resized by 0.5 to 48 x 64 (padded to 64 x 64).
    Image 1 (group b): 64 x 64, not resized; one instance ignored."""
    group_ids = np.array([0, 1])
    unified_space = LabelSpace(dict(a=('person', ), b=('cat', 'person')))
    infos = [dict(group_name='a', instances=[dict(bbox=[40, 20, 80, 60], bbox_label=0),
                                             dict(bbox=[16, 16, 48, 96], bbox_label=0)]),
             dict(group_name='b', instances=[dict(bbox=[8, 8, 24, 40], bbox_label=1),
                                             dict(bbox=[0, 0, 9, 9], bbox_label=0,
                                                  ignore_flag=1),
                                             dict(bbox=[30, 20, 50, 44], bbox_label=0)])]
    shapes = [((48, 64), 0.5), ((64, 64), 1.0)]

    def __len__(self):
        return 2

    def get_data_info(self, idx):
        return dict(self.infos[idx])

    def __getitem__(self, idx):
        (h, w), scale = self.shapes[idx]
        meta = dict(img_shape=(h, w), scale_factor=(scale, scale), group_name='ab'[idx])
        return dict(inputs=torch.zeros(3, h, w, dtype=torch.uint8),
                    data_samples=DetDataSample(metainfo=meta))


def test_roi_features_follow_scale_factor_and_stride():
    feats = extract_features(CoordModel(), TwoImageSource(), level=0, batch_size=2)
    assert float(feats['stride']) == 8.0
    # image means over the valid (unpadded) cells only: 64 x 48 -> (32, 24), not (32, 32)
    np.testing.assert_allclose(feats['image_feats'], [[32, 24], [32, 32]], atol=1e-5)
    # box centres in input pixels: original box * scale_factor
    np.testing.assert_allclose(feats['inst_feats'], [[30, 20], [16, 28], [16, 24], [40, 32]],
                               atol=1e-4)
    assert feats['inst_classes'].tolist() == ['person', 'person', 'person', 'cat']
    assert feats['inst_groups'].tolist() == ['a', 'a', 'b', 'b']
    assert feats['inst_image'].tolist() == [0, 0, 1, 1]
    with pytest.raises(FeatureSpaceError, match='the 1 feature levels .* but got 3'):
        extract_features(CoordModel(), TwoImageSource(), level=3)
    with pytest.raises(FeatureSpaceError, match='has no extract_feat'):
        extract_features(nn.Linear(2, 2), TwoImageSource())


# ---------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_end_to_end_on_synthetic_data(synthetic_root, tmp_path):
    config = tiny_models.write_tiny_config(synthetic_root, str(tmp_path / 'tiny.py'))
    out = tmp_path / 'out'
    proc = run_tool([PYTHON, TOOL, config, '--split', 'val', '--max-images', '16',
                     '--out-dir', str(out)])
    assert 'no checkpoint given' in proc.stderr
    assert 'domain gap' in proc.stdout
    for name in ('features.npz', 'feature_space.json', 'tsne.png'):
        assert (out / name).stat().st_size > 0
    num_gt = sum(len(json.load(open(osp.join(synthetic_root, f'annotations/{g}_val.json')))[
        'annotations']) for g in ('person', 'animal'))
    report = json.loads((out / 'feature_space.json').read_text())
    assert {'num_images', 'num_instances', 'image', 'instance', 'level', 'stride'} <= set(report)
    assert report['num_images'] == 16 and report['num_instances'] == num_gt
    assert set(report['image']['domain_gap']) >= {'balanced_accuracy', 'chance'}
    assert report['instance']['by_class']['labels'] == ['bird', 'cat', 'person']
    assert report['instance']['by_dataset']['labels'] == ['animal', 'person']
    npz = np.load(out / 'features.npz')
    assert npz['inst_feats'].shape == (num_gt, 16) and npz['tsne'].shape == (num_gt, 2)
    assert npz['image_feats'].shape == (16, 16)


@pytest.mark.slow
def test_cli_help_and_errors(synthetic_root, tmp_path, capsys):
    tool = _tool()
    with pytest.raises(SystemExit) as exc:
        tool.main(['--help'])
    assert exc.value.code == 0 and '--max-images' in capsys.readouterr().out
    config = tiny_models.write_tiny_config(synthetic_root, str(tmp_path / 'tiny.py'))
    flat = tiny_models.write_tiny_config(synthetic_root, str(tmp_path / 'flat.py'),
                                         groups=False)
    broken = tmp_path / 'broken.py'
    broken.write_text('model = dict(\n')
    cases = [([str(tmp_path / 'nope.py')], 'config file not found'),
             ([str(broken)], 'cannot read config'),
             ([config, str(tmp_path / 'x.pth')], 'checkpoint not found'),
             ([config, '--max-images', '0'], '--max-images and --batch-size must be >= 1'),
             ([flat], 'not a MultiSourceDataset: the config has no groups'),
             ([config, '--level', '4', '--max-images', '2', '--out-dir', str(tmp_path)],
              'level must index the 2 feature levels')]
    for argv, message in cases:
        assert tool.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith('feature_space.py: error: ') and message in err[-1], err
