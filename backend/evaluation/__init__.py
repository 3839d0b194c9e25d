"""Evaluating talking-head models as the paper does (self-reenactment on held-out videos).

Public door: ``protocol.evaluate_video``/``protocol.Row`` (the per-video protocol), ``metrics`` (SSIM, PSNR,
L1 per frame; FID and CSIM from user-supplied weights), ``table`` (Markdown and CSV shaped like the paper's
Table 1). Importing this package imports neither torch nor cv2.
"""
