from genzoo.training.evolution import EvolutionConfig, EvolutionTrainer
from genzoo.training.trainer import TrainConfig, Trainer

# How a family is fitted (its ``fit_with``) -> the config dataclass of its ``train:`` section
# and the trainer that runs it; both trainers take (model, data, config, run, held_out,
# description) and have fit(), step, save() and resume from the run's latest checkpoint.
TRAINERS = {"gradient": (TrainConfig, Trainer), "evolution": (EvolutionConfig, EvolutionTrainer)}

__all__ = ["EvolutionConfig", "EvolutionTrainer", "TRAINERS", "TrainConfig", "Trainer"]
