"""What is measured on a model's outputs and inputs: localization maps and their scores,
perceptibility of perturbations and the paper's Avg / RI, and t-SNE maps of embeddings."""
