"""Iteration-based resume with a curriculum on the sampler's weights is exact (issue 12:
the batches mmengine skips on resume were redrawn with the resumed weight)."""
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import mtl_plugin  # noqa: F401  (registers the sampler and the hook)
from mtl_plugin.datasets import InfiniteWeightedGroupSampler


class ToyGroups(torch.utils.data.Dataset):
    """12 samples, groups 0 / 1 (6 each); a sample's input is its index."""

    group_ids = np.repeat(np.array([0, 1], dtype=np.int64), 6)

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]))


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(2, 1)
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.seen.append(inputs[:, 0].tolist())
        return dict(loss=(self.fc(inputs / 12) - 1).pow(2).mean())


# chunks of 4 samples = 2 iterations; chunk 2 (iterations 4, 5) is drawn at iteration 4's
# fetch with the weight of iteration 3 (1.0), and the checkpoint after iteration 5 resumes
# with 8.0: without the record, the skip would redraw chunk 2 with 8.0 and train iteration 5
# on another batch
SCHEDULE = dict(type='CurriculumLearningHook', schedules=[
    dict(param='sampler.group_weights.1', milestones=[4, 7], values=[1.0, 8.0, 0.2],
         by_epoch=False)])


def runner(work_dir, max_iters, hooks=(SCHEDULE, ), **kw):
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=f'r_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(dataset=ToyGroups(), batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteWeightedGroupSampler', num_samples=4,
                                           seed=3),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=10**6),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=5, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False), custom_hooks=list(hooks), log_level='WARNING', **kw)


@pytest.mark.slow
def test_iteration_resume_with_a_sampler_curriculum_is_exact(tmp_path):
    straight = runner(tmp_path / 'a', 12)
    straight.train()
    first = runner(tmp_path / 'b', 5)
    first.train()
    resumed = runner(tmp_path / 'b', 12, resume=True,
                     load_from=osp.join(str(tmp_path / 'b'), 'iter_5.pth'))
    resumed.train()
    assert first.model.seen + resumed.model.seen == straight.model.seen  # the same batches
    for (name, a), b in zip(straight.model.state_dict().items(),
                            resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    # the weights did act: without the schedule other batches are drawn
    plain = runner(tmp_path / 'c', 12, hooks=())
    plain.train()
    assert plain.model.seen[:2] == straight.model.seen[:2]  # chunk 0: weights 1 / 1
    assert plain.model.seen != straight.model.seen


def test_the_sampler_redraws_its_chunks_with_their_own_weights():
    sampler = InfiniteWeightedGroupSampler(ToyGroups(), num_samples=4, seed=3)
    it = iter(sampler)
    first = [next(it) for _ in range(4)]  # chunk 0, weights 1 / 1
    sampler.set_group_weights({1: 50.0})
    second = [next(it) for _ in range(4)]  # chunk 1, group 1 fifty times likelier
    state = sampler.state_dict()
    assert state['chunks'] == {0: dict(weights=[1.0, 1.0], ratios=None),
                               1: dict(weights=[1.0, 50.0], ratios=None)}
    again = InfiniteWeightedGroupSampler(ToyGroups(), num_samples=4, seed=3)
    again.set_group_weights({1: 50.0})  # what a resumed curriculum applies first
    again.load_state_dict(state)
    it = iter(again)
    assert [next(it) for _ in range(8)] == first + second
    with pytest.raises(ValueError, match='seed=3 but this sampler has 4'):
        InfiniteWeightedGroupSampler(ToyGroups(), num_samples=4, seed=4).load_state_dict(state)
