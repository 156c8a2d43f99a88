from components.trainer.component import Trainer

__all__ = ["Trainer"]
