from genzoo.training.trainer import TrainConfig, Trainer

__all__ = ["TrainConfig", "Trainer"]
