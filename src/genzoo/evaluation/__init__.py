"""Measuring generative models: likelihoods, feature-space distances, novelty."""
