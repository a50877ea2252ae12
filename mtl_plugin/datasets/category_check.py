"""Annotations whose category id the annotation file does not list: counted, not lost.

mmdet's ``CocoDataset`` keeps an annotation only if its ``category_id`` is one of the
configured classes' ids, so an annotation whose id is missing from the file's
``categories`` (a broken merge, a stale id) vanishes without a word. While a source loads,
:func:`watching_categories` counts them per id; :func:`report_unknown_categories` then
raises (the default) or warns with the count.
"""
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator

from mmengine.logging import print_log

__all__ = ['UNKNOWN_CATEGORY_POLICIES', 'watching_categories', 'report_unknown_categories']

UNKNOWN_CATEGORY_POLICIES = ('error', 'drop')


@contextmanager
def watching_categories(dataset: Any) -> Iterator[Counter]:
    """Count, while ``dataset`` loads, annotations of ids its COCO file does not list.

    Works with datasets that parse a COCO file the mmdet way (``self.coco`` during
    ``load_data_list``, ``parse_data_info(dict(raw_ann_info=[...], ...))`` per image);
    for any other dataset the counter stays empty.

    Args:
        dataset (Any): A source dataset, not loaded yet.

    Yields:
        Counter: category id -> number of annotations with it.
    """
    counter: Counter = Counter()
    parse = getattr(dataset, 'parse_data_info', None)
    if parse is None:
        yield counter
        return

    def counting(raw_data_info: Any) -> Any:
        coco = getattr(dataset, 'coco', None)
        anns = raw_data_info.get('raw_ann_info') if isinstance(raw_data_info, dict) else None
        cats = getattr(coco, 'cats', None)
        if cats is not None and isinstance(anns, list):
            counter.update(a.get('category_id') for a in anns if a.get('category_id') not in cats)
        return parse(raw_data_info)

    dataset.parse_data_info = counting  # the instance's, over the class method
    try:
        yield counter
    finally:
        del dataset.parse_data_info


def report_unknown_categories(name: str, ann_file: Any, unknown: Counter, policy: str) -> None:
    """Raise (``policy='error'``) or warn (``'drop'``) about annotations of unlisted ids.

    Args:
        name (str): The source's group name.
        ann_file (Any): Its annotation file, for the message.
        unknown (Counter): category id -> count, from :func:`watching_categories`.
        policy (str): ``'error'`` or ``'drop'``.

    Raises:
        ValueError: With ``'error'``, when any annotation has an unlisted id.
    """
    if not unknown:
        return
    total = sum(unknown.values())
    ids = ', '.join(f'{cid!r} ({n})' for cid, n in sorted(unknown.items(), key=str))
    what = (f'source "{name}": {total} annotations of {ann_file} have category ids that '
            f"its 'categories' do not list: {ids}")
    if policy == 'error':
        raise ValueError(f'{what}; fix the file, or set MultiSourceDataset('
                         "unknown_categories='drop') to drop them with a warning")
    print_log(f'{what}; dropped (unknown_categories=\'drop\')', logger='current',
              level=30)
