"""Hooks."""
from .head_isolation import HeadIsolationHook

__all__ = ['HeadIsolationHook']
