"""``GroupRoutedEnsemble``: one trained model per group, each sample predicted by its own."""
import os.path as osp
from typing import Dict, List, Optional, Union

from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel, ModuleDict
from mmengine.registry import DefaultScope, MODELS
from mmengine.runner import load_checkpoint

from ...routing import split_by_group


@MODELS.register_module()
class GroupRoutedEnsemble(BaseModel):
    """Inference ensemble that routes every sample to the model trained for its group.

    Each member is a full model (any mmdet detector / mmpose estimator) given by its config
    file and checkpoint; a batch is split by ``group_name`` and every member predicts only
    its group's samples, with its own data preprocessor. Results come back in batch order,
    marked ``pred_label_space='group'`` (each member predicts in its group's own label
    space), so ``GroupedMetric`` evaluates them as they are. Use with ``tools/test.py``
    without a checkpoint argument: the members load their own weights.

    Args:
        models (dict): Group name -> ``dict(config=<path>, checkpoint=<path or None>)``.
            Members are built in their config's ``default_scope``.
        data_preprocessor (dict, optional): Defaults to a pass-through
            ``BaseDataPreprocessor``: each member normalises its own inputs.
        init_cfg (dict, optional): Unused; kept for the BaseModel signature.
    """

    def __init__(self, models: Dict[str, dict], data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type='BaseDataPreprocessor'),
                         init_cfg=init_cfg)
        if not isinstance(models, dict) or not models:
            raise TypeError('GroupRoutedEnsemble needs models=dict(<group>=dict(config=..., '
                            f'checkpoint=...)), but got {models!r}')
        self.members = ModuleDict({g: self._build_member(g, spec) for g, spec in models.items()})

    @staticmethod
    def _build_member(group: str, spec: Union[dict, ConfigDict]) -> BaseModel:
        if not isinstance(spec, dict) or 'config' not in spec:
            raise TypeError(f'models["{group}"] must be dict(config=<path>, checkpoint=<path>), '
                            f'but got {spec!r}')
        if not osp.isfile(spec['config']):
            raise FileNotFoundError(f'models["{group}"]: config not found: {spec["config"]}')
        cfg = Config.fromfile(spec['config'])
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
            model = MODELS.build(cfg.model)
        ckpt = spec.get('checkpoint')
        if ckpt is not None:
            if not osp.isfile(ckpt):
                raise FileNotFoundError(f'models["{group}"]: checkpoint not found: {ckpt}')
            load_checkpoint(model, ckpt, map_location='cpu', logger='current')
        return model

    def forward(self, inputs, data_samples=None, mode: str = 'predict'):
        """Only ``'predict'`` is supported: this is an inference ensemble."""
        if mode != 'predict':
            raise ValueError(f"GroupRoutedEnsemble is inference-only (mode='predict'), "
                             f'but got mode={mode!r}')
        return self._predict(inputs, data_samples)

    def _predict(self, inputs: List, data_samples: List) -> List:
        out: List = [None] * len(data_samples)
        for group, idx in split_by_group(data_samples).items():
            if group not in self.members:
                raise KeyError(f'sample of group "{group}" has no member model; members: '
                               f'{list(self.members)}')
            batch = dict(inputs=[inputs[i] for i in idx],
                         data_samples=[data_samples[i] for i in idx])
            for i, result in zip(idx, self.members[group].test_step(batch)):
                result.set_metainfo(dict(pred_label_space='group'))
                out[i] = result
        return out

    def test_step(self, data: dict) -> List:
        """Route a collated batch (inputs still un-normalised) to the members."""
        data = self.data_preprocessor(data, False)
        return self._predict(data['inputs'], data['data_samples'])

    val_step = test_step
