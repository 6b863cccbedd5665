"""Helm releases pinned to exact chart versions."""
