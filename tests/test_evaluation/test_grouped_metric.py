import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import EVALUATOR, METRICS, init_default_scope
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mtl_plugin.labels import LabelSpace

GROUPS = dict(person=('person', ), animal=('cat', 'bird'))


def _fake_predictions(root, seed=0):
    """Jittered GT boxes + random scores + some false positives, per group, local labels."""
    rng = np.random.default_rng(seed)
    preds = {}
    for group in GROUPS:
        coco = json.load(open(osp.join(root, f'annotations/{group}_val.json')))
        for img in coco['images']:
            anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
            boxes = [np.array(a['bbox']) + rng.normal(0, 3, 4) for a in anns]
            labels = [a['category_id'] - 1 for a in anns]
            for _ in range(2):  # false positives, any class of the group
                boxes.append(rng.uniform(0, 100, 4))
                labels.append(int(rng.integers(0, len(GROUPS[group]))))
            xyxy = np.array([[x, y, x + abs(w) + 1, y + abs(h) + 1] for x, y, w, h in boxes])
            preds[(group, img['id'])] = (xyxy, rng.uniform(0.05, 1, len(boxes)),
                                         np.array(labels))
    return preds


def _pycocotools_ap(root, group, preds):
    gt = COCO(osp.join(root, f'annotations/{group}_val.json'))
    dets = [dict(image_id=img_id, category_id=int(l) + 1, score=float(s),
                 bbox=[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])])
            for (g, img_id), (boxes, scores, labels) in preds.items() if g == group
            for b, s, l in zip(boxes, scores, labels)]
    ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
    ev.evaluate(), ev.accumulate(), ev.summarize()
    return ev.stats[0], ev.stats[1]


@pytest.mark.parametrize('label_space', ['group', 'unified'])
def test_grouped_metric_equals_pycocotools_per_group(synthetic_root, label_space):
    init_default_scope('mmdet')
    preds = _fake_predictions(synthetic_root)
    space = LabelSpace(GROUPS)
    evaluator = EVALUATOR.build(dict(type='GroupedMetric', metrics={
        g: dict(type='CocoMetric', ann_file=osp.join(synthetic_root, f'annotations/{g}_val.json'))
        for g in GROUPS}))
    evaluator.dataset_meta = dict(
        classes=space.unified_classes, unified_classes=space.unified_classes,
        label_space=label_space, group_metainfo={g: dict(classes=c) for g, c in GROUPS.items()})
    samples = []
    for (group, img_id), (boxes, scores, labels) in preds.items():
        labels = torch.as_tensor(labels)
        marks = {}
        if label_space == 'unified':
            labels = space.to_unified(group, labels)
        elif group == 'animal':  # a multi-head model marks its merged predictions
            labels, marks = space.to_unified(group, labels), dict(pred_label_space='unified')
        samples.append(dict(group_name=group, img_id=img_id, ori_shape=(128, 128), **marks,
                            pred_instances=dict(bboxes=torch.as_tensor(boxes).float(),
                                                scores=torch.as_tensor(scores).float(),
                                                labels=labels)))
    for i in range(0, len(samples), 5):  # batches mixing groups
        evaluator.process(samples[i:i + 5])
    results = evaluator.evaluate(len(samples))
    for group in GROUPS:
        ap, ap50 = _pycocotools_ap(synthetic_root, group, preds)
        assert results[f'{group}/coco/bbox_mAP'] == round(ap, 3)
        assert results[f'{group}/coco/bbox_mAP_50'] == round(ap50, 3)
    assert results['mean/coco/bbox_mAP'] == round(
        (results['person/coco/bbox_mAP'] + results['animal/coco/bbox_mAP']) / 2, 4)


def test_grouped_metric_errors():
    init_default_scope('mmdet')
    with pytest.raises(TypeError, match='metrics=dict'):
        METRICS.build(dict(type='GroupedMetric', metrics=[]))
    metric = METRICS.build(dict(type='GroupedMetric', metrics=dict(
        person=dict(type='CocoMetric', ann_file=None))))
    with pytest.raises(KeyError, match='does not have'):
        metric.dataset_meta = dict(classes=('a', ), group_metainfo=dict(animal={}))
    metric.dataset_meta = dict(classes=('person', ))
    with pytest.raises(KeyError, match='has no metric'):
        metric.process({}, [dict(group_name='animal')])
    with pytest.raises(KeyError, match='MultiSourceDataset'):
        metric.process({}, [dict(img_id=1)])


def test_unknown_metric_names_group_and_fix():
    from mtl_plugin.evaluation import GroupedMetric
    with pytest.raises(KeyError, match=r"metric 'NoSuchMetric' of group 'person' is not a "
                                       r'registered metric'):
        GroupedMetric(metrics=dict(person=dict(type='NoSuchMetric')))


def test_coverage_and_swapped_ann_files_fail_when_the_loop_is_built(synthetic_root, tmp_path):
    """Issue 12: a group without a metric, or swapped ann files, failed after training."""
    from mtl_plugin.datasets import MultiSourceDataset
    init_default_scope('mmdet')
    ann = {g: osp.join(synthetic_root, f'annotations/{g}_val.json') for g in GROUPS}
    dataset = MultiSourceDataset(datasets=[
        dict(type='CocoDataset', group_name=g, data_root=synthetic_root, ann_file=ann[g],
             data_prefix=dict(img=f'images/{g}/'), metainfo=dict(classes=c), pipeline=[])
        for g, c in GROUPS.items()])
    assert dataset.metainfo['group_ann_files'] == ann

    def grouped(files):
        return METRICS.build(dict(type='GroupedMetric', metrics={
            g: dict(type='CocoMetric', ann_file=f) for g, f in files.items()}))

    grouped(ann).dataset_meta = dataset.metainfo  # the right files: fine
    with pytest.raises(KeyError, match=r"groups \['animal'\] have no metric; add "
                                       r"metrics=dict\(animal=dict\(type=...\)\)"):
        grouped(dict(person=ann['person'])).dataset_meta = dataset.metainfo
    swapped = grouped(dict(person=ann['animal'], animal=ann['person']))
    with pytest.raises(ValueError, match=r'metric of group "person" \(CocoMetric\) evaluates '
                                         r"on an annotation file whose categories lack the "
                                         r"group's classes \['person'\].*swapped"):
        swapped.dataset_meta = dataset.metainfo
    # same categories, other images: the image check
    other = osp.join(str(tmp_path), 'person_other.json')
    coco = json.load(open(ann['person']))
    for img in coco['images']:
        img['file_name'] = 'other_' + img['file_name']
    json.dump(coco, open(other, 'w'))
    with pytest.raises(ValueError, match=r'metric of group "person" \(CocoMetric\) evaluates '
                                         r'on an annotation file without \d+ of the \d+ images'
                                         r".*person_val.json \(e.g. id 1, 'val_000000.jpg'\)"):
        grouped(dict(ann, person=other)).dataset_meta = dataset.metainfo
