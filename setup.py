"""Install mtl_plugin.

``install_requires`` is what ``import mtl_plugin`` (detection, classification, evaluation,
the engine hooks) imports; the extras are what one feature imports when it is used:

* ``pose``: ``MultiHeadPoseEstimator`` and the group-weighted heatmap losses import mmpose
  when first built. mmpose itself is NOT listed: its metadata requires chumpy, which no
  longer builds and which no code imports, so ``tools/bootstrap.sh`` installs
  ``mmpose==1.3.2`` with ``--no-deps``; this extra holds mmpose's real dependencies.
* ``surgery``: ``GradSurgeryOptimWrapper`` imports torchjd when it builds its aggregator.
* ``analysis``: ``mtl_plugin.analysis`` and ``tools/analysis`` (plots, feature space,
  cleanlab consolidation).

``tools/bootstrap.sh`` installs the verified versions of everything
(``requirements/runtime.txt`` under ``requirements/constraints.txt``), then this package
with ``--no-deps``.
"""
from setuptools import find_packages, setup

POSE = ['json_tricks', 'munkres', 'xtcocotools==1.14.3', 'scipy']  # + mmpose==1.3.2 --no-deps
SURGERY = ['torchjd[cagrad]==0.18.0']
ANALYSIS = ['matplotlib', 'scikit-learn', 'cleanlab==2.9.0', 'torchvision']

setup(
    name='mtl_plugin',
    version='0.1.0',
    description='Multi-dataset / multi-task training for MMDetection and MMPose',
    packages=find_packages(include=['mtl_plugin', 'mtl_plugin.*']),
    python_requires='>=3.10',
    install_requires=['torch', 'numpy<2', 'opencv-python', 'mmengine==0.10.7', 'mmcv==2.1.0',
                      'mmdet==3.3.0', 'pycocotools', 'rich'],
    extras_require=dict(pose=POSE, surgery=SURGERY, analysis=ANALYSIS,
                        all=POSE + SURGERY + ANALYSIS),
)
