"""What a chunked sampler drew, so that a resumed run draws it again.

``InfiniteWeightedGroupSampler`` draws its stream chunk by chunk with the group weights in
force when each chunk is drawn; ``CurriculumLearningHook`` changes those weights during
training. On resume, mmengine's ``IterBasedTrainLoop`` skips the batches already trained by
drawing them again, so the chunks must be redrawn with the weights they had, not the
resumed ones: :class:`ChunkRecord` keeps, per chunk, the weights / ratios it was drawn with.
"""
from typing import Dict, Optional, Tuple

import numpy as np
import torch

__all__ = ['ChunkRecord']


class ChunkRecord:
    """Mixin of a sampler with ``seed``, ``num_samples``, ``_weights`` / ``_ratios`` (numpy,
    or None) and ``_draw(seed)``: records and replays the shares of every chunk.

    The host sets ``self._drawn = {}`` in its constructor and draws chunk ``k`` with
    :meth:`_draw_chunk`.
    """

    _drawn: Dict[int, Tuple[Optional[list], Optional[list]]]

    def _draw_chunk(self, k: int) -> torch.Tensor:
        """Chunk ``k``: with the weights of the record, or the current ones (recorded)."""
        if k not in self._drawn:
            self._drawn[k] = tuple(None if v is None else v.tolist()
                                   for v in (self._weights, self._ratios))
            return self._draw(self.seed + k)
        current = (self._weights, self._ratios)
        self._weights, self._ratios = (None if v is None else np.asarray(v, dtype=np.float64)
                                       for v in self._drawn[k])
        try:
            return self._draw(self.seed + k)
        finally:
            self._weights, self._ratios = current

    def state_dict(self) -> dict:
        """The seed and the weights / ratios of every chunk drawn so far."""
        return dict(seed=self.seed, num_samples=self.num_samples, chunks={
            k: dict(weights=w, ratios=r) for k, (w, r) in self._drawn.items()})

    def load_state_dict(self, state: dict) -> None:
        """Draw the recorded chunks again with their own weights (call before iterating).

        Raises:
            ValueError: The record is of a sampler with another seed or chunk size.
        """
        for key in ('seed', 'num_samples'):
            if state.get(key) != getattr(self, key):
                raise ValueError(f'{type(self).__name__}.load_state_dict: the record has '
                                 f'{key}={state.get(key)!r} but this sampler has '
                                 f'{getattr(self, key)!r}; resume with the same sampler config')
        self._drawn = {int(k): (v['weights'], v['ratios']) for k, v in state['chunks'].items()}
