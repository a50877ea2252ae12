# Baseline of the group_boost study: no group-specific treatment.
_base_ = ['../_base_/group_boost_pose.py']
