"""Inference: sliding-window prediction and class-map writing."""
