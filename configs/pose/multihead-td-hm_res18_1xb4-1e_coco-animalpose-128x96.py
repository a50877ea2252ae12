# One top-down model, two keypoint heads of different sizes: COCO's 17 person keypoints and
# Animal-Pose's 20 animal keypoints, a shared ResNet-18 (random init, 128x96). Each sample
# trains only its own dataset's head and is drawn with its own dataset's skeleton
# (GroupPoseLocalVisualizer); mmpose's init_model / inference_topdown / MMPoseInferencer
# read the test pipeline at test_dataloader.dataset.pipeline. The COCO + AP-10K config with
# its animal source and head swapped.
_base_ = ['./multihead-td-hm_res18_1xb4-1e_coco-ap10k-128x96.py']
sources = dict(person=('CocoDataset', 'coco', 'test_coco.json'),
               animal=('AnimalPoseDataset', 'animalpose', 'test_animalpose.json'))
__animal = dict(type='AnimalPoseDataset', ann_file='animalpose/test_animalpose.json',
                data_prefix=dict(img='animalpose/'))
model = dict(heads=dict(animal=dict(out_channels=20)))
train_dataloader = dict(dataset=dict(datasets=[
    _base_.train_dataloader.dataset.datasets[0],
    dict(_base_.train_dataloader.dataset.datasets[1], **__animal)]))
val_dataloader = dict(dataset=dict(datasets=[
    _base_.val_dataloader.dataset.datasets[0],
    dict(_base_.val_dataloader.dataset.datasets[1], **__animal)]))
test_dataloader = val_dataloader
val_evaluator = dict(metrics=dict(animal=dict(
    ann_file=_base_.data_root + 'animalpose/test_animalpose.json')))
test_evaluator = val_evaluator
