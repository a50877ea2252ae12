import pytest
import torch
from mmengine.structures import BaseDataElement

from mtl_plugin.labels import LabelSpace
from mtl_plugin.routing import get_group_name, split_by_group


def _sample(group):
    return BaseDataElement(metainfo=dict(group_name=group))


def test_split_by_group_keeps_order_of_first_appearance():
    batch = [_sample('b'), _sample('a'), _sample('b'), _sample('c')]
    assert split_by_group(batch) == {'b': [0, 2], 'a': [1], 'c': [3]}
    assert list(split_by_group(batch)) == ['b', 'a', 'c']


def test_missing_group_name_says_how_to_fix():
    with pytest.raises(KeyError, match='MultiSourceDataset'):
        get_group_name(BaseDataElement(metainfo=dict(img_id=3)))


def test_label_space_default_is_ordered_union_with_shared_names_once():
    space = LabelSpace(dict(a=('person', 'car'), b=('cat', 'person')))
    assert space.unified_classes == ('person', 'car', 'cat')
    assert space.to_unified('b', torch.tensor([0, 1, 1])).tolist() == [2, 0, 0]
    keep, local = space.to_group('b', torch.tensor([0, 1, 2, 2]))
    assert keep.tolist() == [True, False, True, True]
    assert local.tolist() == [1, 0, 0]
    keep, local = space.to_group('a', torch.zeros(0, dtype=torch.long))
    assert keep.shape == (0, ) and local.shape == (0, )


def test_label_space_mapping_and_errors():
    space = LabelSpace(dict(a=('person', ), b=('human', 'dog')),
                       class_mapping=dict(b=dict(human='person')))
    assert space.unified_classes == ('person', 'dog')
    assert space.to_unified('b', torch.tensor([0, 1])).tolist() == [0, 1]
    with pytest.raises(KeyError, match='unknown groups'):
        LabelSpace(dict(a=('x', )), class_mapping=dict(zzz={}))
    with pytest.raises(ValueError, match='not in the unified classes'):
        LabelSpace(dict(a=('x', 'y')), unified_classes=('x', ))
    with pytest.raises(KeyError, match='known groups'):
        space.lookup('nope')
