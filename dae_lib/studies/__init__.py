"""Studies beyond the reproduction: speed (bench), settings chosen on validation (sweep), bf16 vs fp32
(precision), the paper's MS-SSIM form against Wang's (msssim_forms), the released model (release).
Each runs as ``python -m dae_lib.studies.<name>``."""
