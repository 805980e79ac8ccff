"""Promptable segmentation models: backbone registry, SAM prompt encoder and mask decoder.

Importing this package imports torch. Backbone builders register themselves when their module is
imported; ``registry.build_backbone`` imports all of them first.
"""
