"""Checkpoints in and out: a head (+ backbone / neck) from a stock single-head checkpoint, and
one head exported as a stock config + checkpoint that plain mmdet / mmpose run without the
plugin, with bit-identical predictions."""
import copy

import pytest
import torch
from mmdet.models.utils import multi_apply  # noqa: F401  (mmdet registered before building)
from mmengine.config import ConfigDict
from mmengine.model.weight_init import bias_init_with_prob
from mmengine.registry import MODELS, init_default_scope
from tiny_models import TEST_CFG, TRAIN_CFG, backbone_neck, batch, build_detector, retina

from mtl_plugin.checkpoints import SingleHeadMismatchError, load_single_head


def _perturb(model, seed):
    """Parameters and BN statistics unlike any default init (so equality means copied)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.add_((torch.rand(t.shape, generator=g) - 0.5) * 0.02 + ('running_var' in name))
    return model


def stock_retinanet(num_classes=1, seed=1):
    """A stock mmdet RetinaNet of the tiny multi-head model's layout, trained-looking."""
    init_default_scope('mmdet')
    cfg = dict(type='RetinaNet', **backbone_neck(), bbox_head=retina(num_classes),
               train_cfg=TRAIN_CFG, test_cfg=TEST_CFG, init_cfg=None)
    torch.manual_seed(seed)
    model = MODELS.build(ConfigDict(cfg))  # heads read test_cfg by attribute
    model.init_weights()
    return _perturb(model, seed).eval()


@pytest.fixture(scope='module')
def stock_ckpt(tmp_path_factory):
    model = stock_retinanet()
    path = str(tmp_path_factory.mktemp('stock') / 'person_retinanet.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict(
        dataset_meta=dict(classes=('person', )))), path)
    return model, path


def _same(a, b):
    """Names of the tensors that differ (or are missing) between two state dicts."""
    return sorted(k for k in set(a) | set(b)
                  if k not in a or k not in b or not torch.equal(a[k], b[k]))


def _assert_person_from_stock(model, stock):
    state, ref = model.state_dict(), stock.state_dict()
    for src, dst in (('backbone.', 'backbone.'), ('neck.', 'neck.'),
                     ('bbox_head.', 'heads.person.')):
        part = {k[len(src):]: v for k, v in ref.items() if k.startswith(src)}
        mine = {k[len(dst):]: v for k, v in state.items() if k.startswith(dst)}
        assert part and _same(part, mine) == [], (src, _same(part, mine))


def _assert_animal_own_init(model, stock):
    animal = model.heads.animal
    # RetinaHead's own init: prior-probability bias of the classifier, N(0, 0.01) convs
    assert torch.equal(animal.retina_cls.bias,
                       torch.full_like(animal.retina_cls.bias, bias_init_with_prob(0.01)))
    assert 0.005 < float(animal.retina_reg.weight.detach().std()) < 0.02
    stock_values = [t for t in stock.state_dict().values() if t.is_floating_point()]
    for name, t in animal.state_dict().items():
        if t.is_floating_point() and t.numel() > 1:
            assert not any(t.shape == s.shape and torch.equal(t, s) for s in stock_values), name


def test_init_cfg_single_head_pretrained(stock_ckpt):
    stock, path = stock_ckpt
    model = build_detector(init_cfg=dict(type='SingleHeadPretrained', checkpoint=path,
                                         head='person'))  # model.init_weights(), as Runner
    _assert_person_from_stock(model, stock)
    _assert_animal_own_init(model, stock)


def test_mmengine_pretrained_prefix_route(stock_ckpt):
    """MMEngine's own Pretrained + prefix per module, config only: the same tensors."""
    stock, path = stock_ckpt
    parts = backbone_neck()
    for part in ('backbone', 'neck'):
        parts[part]['init_cfg'] = dict(type='Pretrained', checkpoint=path, prefix=f'{part}.')
    person = dict(retina(1), init_cfg=dict(type='Pretrained', checkpoint=path,
                                           prefix='bbox_head.'))
    model = build_detector(heads=dict(person=person, animal=retina(2)), **parts)
    _assert_person_from_stock(model, stock)
    _assert_animal_own_init(model, stock)


def test_load_single_head_predictions_equal_stock(stock_ckpt):
    stock, path = stock_ckpt
    model = build_detector()
    animal_before = copy.deepcopy(model.heads.animal.state_dict())
    loaded = load_single_head(model, path, head='person')
    assert loaded == {'heads.person': len(stock.bbox_head.state_dict()),
                      'backbone': len(stock.backbone.state_dict()),
                      'neck': len(stock.neck.state_dict())}
    _assert_person_from_stock(model, stock)
    assert _same(animal_before, model.heads.animal.state_dict()) == []  # untouched
    model.eval()
    data = model.data_preprocessor(batch(['person', 'animal'], seed=3), False)
    with torch.no_grad():
        mine = model.predict_per_head(data['inputs'], data['data_samples'])['person']
        ref = stock.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    assert [len(r.pred_instances) for r in ref] == [20, 20]  # score_thr=0: max_per_img each
    for got, want in zip(mine, ref):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(got[key], want.pred_instances[key]), key


def test_load_single_head_names_mismatched_keys(stock_ckpt):
    _, path = stock_ckpt
    model = build_detector()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(SingleHeadMismatchError) as err:
        load_single_head(model, path, head='animal')  # 2 classes vs the checkpoint's 1
    message = str(err.value)
    assert 'bbox_head.retina_cls.weight (1, 16, 3, 3) -> heads.animal.retina_cls.weight ' \
        '(2, 16, 3, 3)' in message and 'bbox_head.retina_cls.bias (1,)' in message
    assert 'backbone' not in message.split('. Configure')[0].split('shape mismatches')[0]
    assert _same(before, model.state_dict()) == []  # nothing loaded when a part does not fit
    with pytest.raises(KeyError, match="head='dog' is not a head of the model; heads: "
                       r"\['person', 'animal'\]"):
        load_single_head(model, path, head='dog')
    state = {k: v for k, v in torch.load(path)['state_dict'].items()
             if not k.startswith('neck.layer')}
    with pytest.raises(SingleHeadMismatchError, match=r'missing in the checkpoint: '
                       r'neck\.fpn_convs\.0\.conv\.bias'):
        load_single_head(model, {k: v for k, v in state.items()
                                 if not k.startswith('neck.fpn_convs')}, head='person')
