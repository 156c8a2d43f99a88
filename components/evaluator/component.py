"""Evaluator: the exported model + raw test examples in; metrics and a blessing out.

`evaluate_fn` (`module.path:function(saved_model_dir, examples_artifact, split) -> dict`)
computes the pipeline's metrics through the exported serving signature, so
what is measured is what will be served: `{"overall": {...}, "slices": {...}}`.

The model is blessed only if every threshold holds (`{"metric": {"min": x}}`,
`{"metric": {"max": x}}`, or `{"metric": {"max_metric": "other_metric"}}`)
and, when a model is already published in `baseline_dir`
(`<serving-dir>/<model>`: only blessed models are published there), it is
not worse on `comparison_metric` by more than `tolerance` (relative), both
measured on the same examples.
"""

from components.base import BaseComponent, ComponentSpec, Examples, Model, ModelBlessing, ModelEvaluation, Parameter
from components.base.component import InputSpec
from components.evaluator import executor


class Evaluator(BaseComponent):
    SPEC = ComponentSpec(
        inputs={"examples": InputSpec(Examples), "model": InputSpec(Model)},
        outputs={"evaluation": ModelEvaluation, "blessing": ModelBlessing},
        parameters={
            "evaluate_fn": Parameter(str, user_code=True),
            "thresholds": Parameter(str, "{}", "JSON: metric -> {min|max|max_metric}"),
            "comparison_metric": Parameter(str),
            "higher_is_better": Parameter(bool, True),
            "tolerance": Parameter(float, 0.01, "relative degradation allowed against the published model"),
            "baseline_dir": Parameter(str, None, "<serving-dir>/<model>; its newest version is the last blessed model"),
            "split": Parameter(str, "test"),
        },
    )
    EXECUTOR = executor.EvaluatorExecutor
