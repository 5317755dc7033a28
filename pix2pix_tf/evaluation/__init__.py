"""Evaluation: how good a generator is.

Owns scoring a run over a whole split and periodically during training
(`evaluator`), the image metrics L1, PSNR and SSIM (`metrics`), FID and KID in
InceptionV3's features (`fid`), the segmentation network behind the paper's
FCN-score (`segmenter`) and the reports, galleries and loss curves written beside
the metrics (`reports`).
"""
