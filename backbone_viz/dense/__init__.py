"""torchvision's real detectors and segmenters, on the same backbones as the classifiers.

:mod:`~backbone_viz.dense.specs` describes each one as data (no torch at import);
:mod:`~backbone_viz.dense.models` loads it through the same weights path as the backbones and runs it;
:mod:`~backbone_viz.dense.inside` reads its backbone's maps and compares them with the classifier's
(:mod:`~backbone_viz.dense.cka`: linear CKA); :mod:`~backbone_viz.dense.looked` shows where it looked
(EigenCAM inside a detector's boxes, a segmenter's Grad-CAM for each class).
"""
