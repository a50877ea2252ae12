"""Install mtl_plugin. The OpenMMLab stack itself is installed by tools/bootstrap.sh."""
from setuptools import find_packages, setup

setup(
    name='mtl_plugin',
    version='0.1.0',
    description='Multi-dataset / multi-task training for MMDetection and MMPose',
    packages=find_packages(include=['mtl_plugin', 'mtl_plugin.*']),
    python_requires='>=3.10',
    install_requires=['mmengine==0.10.7', 'mmdet==3.3.0'],
)
