"""``SaveBestCheckHook``: a ``save_best`` key (or an early-stopping ``monitor``) the evaluator
never reports fails before training; ``TestableEarlyStoppingHook``: MMEngine's early stopping
without its train-loop check in a test run."""
import difflib
from typing import List, Optional

from mmengine.hooks import CheckpointHook, EarlyStoppingHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from ...evaluation.metric_keys import evaluator_keys

__all__ = ['SaveBestCheckHook', 'TestableEarlyStoppingHook', 'check_save_best']


def check_save_best(save_best: Optional[List[str]], keys: List[str],
                    setting: str = 'default_hooks.checkpoint.save_best',
                    consequence: str = 'the best checkpoint could never be chosen') -> None:
    """Check every ``save_best`` key against the keys the evaluator will report.

    Args:
        save_best (list[str] | None): ``CheckpointHook.save_best`` (``'auto'`` always works).
        keys (list[str]): The keys the val evaluator reports (see
            :mod:`mtl_plugin.evaluation.metric_keys`).
        setting (str): The setting's name in the error.
        consequence (str): What a missing key would silently do, for the error.

    Raises:
        KeyError: For the first missing key, listing the keys that exist: the same key
            per group and its ``mean/`` first, then close spellings.
    """
    for key in save_best or []:
        if key == 'auto' or key in keys:
            continue
        # the same key per group and its mean ('mean/' first), then close spellings
        same = sorted((k for k in keys if k.endswith('/' + key)),
                      key=lambda k: not k.startswith('mean/'))
        hint = same + [k for k in difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
                       if k not in same]
        raise KeyError(
            f'{setting}={key!r} is not a key the val evaluator reports, so {consequence} '
            "(a stock base's key? GroupedMetric reports '<group>/<key>' and 'mean/<key>'). "
            f"Set {setting.rsplit('.', 1)[-1]} to one of {hint or keys[:5]}; all keys: {keys}")


@HOOKS.register_module()
class SaveBestCheckHook(Hook):
    """Fail in ``before_train`` when ``CheckpointHook(save_best=...)`` names a key the val
    evaluator will never report (MMEngine would raise a ``KeyError`` only after the first
    validation, i.e. after the first training epochs).

    The keys come from the built evaluator's settings (:func:`evaluator_keys`): e.g.
    ``GroupedMetric(metrics=dict(person=dict(type='CocoMetric', metric='bbox'), ...))`` reports
    ``person/coco/bbox_mAP``, ..., ``mean/coco/bbox_mAP``, ..., so a stock
    ``save_best='coco/bbox_mAP'`` fails here, naming ``mean/coco/bbox_mAP`` and the others.
    With a metric whose keys are not known before evaluation, or no validation at all, the
    hook only logs that it cannot check. Listed in ``configs/_base_/runtime/multihead_runtime.py``.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner: Runner) -> None:
        """Check ``save_best`` of every ``CheckpointHook`` against the evaluator's keys."""
        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook) and h.save_best]
        stoppers = [h for h in runner.hooks if isinstance(h, EarlyStoppingHook)]
        if not hooks and not stoppers:
            return
        if runner.val_loop is None:
            runner.logger.warning('SaveBestCheckHook: save_best / early stopping is set but '
                                  'there is no validation (val_cfg / val_dataloader), so it '
                                  'never applies')
            return
        keys = evaluator_keys(runner.val_loop.evaluator)
        if keys is None:
            runner.logger.warning('SaveBestCheckHook: the val evaluator has a metric whose '
                                  'keys are not known before evaluation; save_best is not '
                                  'checked')
            return
        for hook in hooks:
            check_save_best(hook.save_best, keys)
        for hook in stoppers:  # MMEngine only warns, at every validation, and never stops
            check_save_best([hook.monitor], keys, f'{type(hook).__name__}.monitor',
                            'training would never stop early')


@HOOKS.register_module()
class TestableEarlyStoppingHook(EarlyStoppingHook):
    """MMEngine's ``EarlyStoppingHook`` (same arguments, same stopping rule) that a test run
    does not break.

    The stock hook's ``before_run`` asserts ``runner.train_loop.stop_training``; in
    ``runner.test()`` (mmdet / mmpose ``tools/test.py``) that builds the train loop and its
    dataloader, so testing a checkpoint needs the *training* files, and fails without them.
    This hook makes the same check in ``before_train``, which only training calls.
    """

    def before_run(self, runner: Runner) -> None:
        """Nothing: the train-loop check waits for ``before_train``."""

    def before_train(self, runner: Runner) -> None:
        """The stock check, when training starts."""
        super().before_run(runner)
