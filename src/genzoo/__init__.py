"""genzoo: train, sample, measure and compare every major family of generative model."""

__version__ = "0.1.0"
