"""Scoring on a site's own pairs (``python -m dae_lib score``): ``registration`` aligns a soft-tissue
image to its radiograph (scale and shift, on edges), ``score`` runs the model and scores it beside
doing nothing, raw and after an affine fit of the grey levels."""
