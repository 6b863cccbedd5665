"""Helm releases pinned to exact chart versions."""

__all__ = ["pinned_release"]
