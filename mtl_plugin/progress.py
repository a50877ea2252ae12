"""The one progress style of the tools and analyses: a rich bar on stderr.

Imports nothing from the package, so evaluation and analysis may both use it.
"""
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

from rich.console import Console
from rich.progress import Progress, track as _rich_track

__all__ = ['track', 'progress_bar', 'collated_batches']

T = TypeVar('T')


def track(items: Sequence[T], description: str, disable: bool = False) -> Iterable[T]:
    """Iterate ``items`` with a progress bar on stderr.

    Args:
        items (Sequence): What to iterate (its length is the bar's total).
        description (str): The bar's label.
        disable (bool): No bar (plain iteration). Defaults to False.

    Returns:
        Iterable: The items, in order.
    """
    return _rich_track(items, description=description, console=Console(stderr=True),
                       disable=disable)


def progress_bar(disable: bool = False) -> Progress:
    """A rich ``Progress`` on stderr for bars with several tasks (use it as a context).

    Args:
        disable (bool): Hide it. Defaults to False.

    Returns:
        Progress: The (not yet started) progress display.
    """
    return Progress(console=Console(stderr=True), disable=disable, transient=True)


def collated_batches(dataset, batch_size: int, indices: Optional[Sequence[int]] = None,
                     description: str = 'predicting',
                     disable: bool = False) -> Iterator[Tuple[List[int], dict]]:
    """The dataset's samples in ``pseudo_collate``-d batches, with a progress bar.

    Args:
        dataset: Any indexable dataset (``dataset[i]`` is a packed sample).
        batch_size (int): Samples per batch.
        indices (Sequence[int], optional): The dataset indices, in order. Defaults to all.
        description (str): The bar's label. Defaults to 'predicting'.
        disable (bool): No bar. Defaults to False.

    Yields:
        tuple[list[int], dict]: The batch's dataset indices and the collated batch
        (``inputs``, ``data_samples``), to give to ``model.data_preprocessor`` or
        ``model.test_step``.
    """
    from mmengine.dataset import pseudo_collate  # lazily: it imports torch
    indices = list(range(len(dataset))) if indices is None else list(indices)
    chunks = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    for chunk in track(chunks, description, disable=disable):
        yield chunk, pseudo_collate([dataset[i] for i in chunk])
