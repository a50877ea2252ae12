"""``MultiHeadDetector.predict_per_head``: each head's raw predictions, own label space."""
import copy

import pytest
import torch

import mtl_plugin  # noqa: F401  (registers MultiHeadDetector)
from tiny_models import META, batch, build_detector

FPN = dict(type='FPN', in_channels=[16, 32], out_channels=16, num_outs=2)


def soft_sharing_detector():
    """A tiny detector whose neck is one FPN copy per head, the copies made different."""
    model = build_detector(neck=dict(type='SoftParameterSharing', branch=FPN,
                                     tasks=['person', 'animal']))
    with torch.no_grad():  # make sure each head sees its own (different) neck copy
        for p in model.neck.branches['animal'].parameters():
            p.add_(0.05)
    model.dataset_meta = META
    return model.eval()


@torch.no_grad()
def test_predict_per_head_with_soft_sharing_equals_the_merged_predictions_split_by_head():
    model = soft_sharing_detector()
    data = model.data_preprocessor(batch(['person', 'animal', 'animal'], seed=3), False)
    per_head = model.predict_per_head(data['inputs'], data['data_samples'])
    assert list(per_head) == ['person', 'animal']
    assert all(len(v) == 3 for v in per_head.values())
    # each head's labels are in its own classes (person: 1 class, animal: 2)
    assert all(int(r.labels.max()) < 1 for r in per_head['person'] if len(r))
    assert all(int(r.labels.max()) < 2 for r in per_head['animal'] if len(r))
    merged = model.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    for i, sample in enumerate(merged):
        pred = sample.pred_instances
        parts = [per_head['person'][i], per_head['animal'][i]]
        n_person = len(parts[0])
        assert len(pred) == n_person + len(parts[1])
        torch.testing.assert_close(pred.bboxes, torch.cat([p.bboxes for p in parts]))
        torch.testing.assert_close(pred.scores, torch.cat([p.scores for p in parts]))
        for head, part, labels in (('person', parts[0], pred.labels[:n_person]),
                                   ('animal', parts[1], pred.labels[n_person:])):
            assert torch.equal(labels, model.head_to_unified(head, part.labels.clone()))


@torch.no_grad()
def test_predict_per_head_uses_each_heads_neck_copy():
    model = soft_sharing_detector()
    data = model.data_preprocessor(batch(['person'], seed=1), False)
    x = model.extract_feat(data['inputs'])
    expected = model.heads['animal'].predict(model.head_feat(x, 'animal'),
                                             data['data_samples'], rescale=True)
    got = model.predict_per_head(data['inputs'], data['data_samples'], heads=['animal'])
    assert list(got) == ['animal']
    torch.testing.assert_close(got['animal'][0].scores, expected[0].scores)
    torch.testing.assert_close(got['animal'][0].bboxes, expected[0].bboxes)


def test_predict_per_head_unknown_head():
    model = soft_sharing_detector()
    data = model.data_preprocessor(batch(['person'], seed=1), False)
    with pytest.raises(KeyError, match=r"unknown heads \['dog'\]"):
        model.predict_per_head(data['inputs'], data['data_samples'], heads=['dog'])
