"""Training: one model from a recipe (`train`, `python -m avdemo.training.train`) and the whole
zoo from the recipes and the defense registry (`build_zoo`)."""
