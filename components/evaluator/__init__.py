from components.evaluator.component import Evaluator

__all__ = ["Evaluator"]
