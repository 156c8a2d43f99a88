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
from components.base.component import ExecutorRef, InputSpec, within

# The keys of its inputs, outputs and parameters: the executor and the pipelines use these names.
EVALUATE_FN_KEY = "evaluate_fn"
THRESHOLDS_KEY = "thresholds"
COMPARISON_METRIC_KEY = "comparison_metric"
HIGHER_IS_BETTER_KEY = "higher_is_better"
TOLERANCE_KEY = "tolerance"
BASELINE_DIR_KEY = "baseline_dir"
SPLIT_KEY = "split"
EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"


class Evaluator(BaseComponent):
    SPEC = ComponentSpec(
        inputs={EXAMPLES_KEY: InputSpec(Examples), MODEL_KEY: InputSpec(Model)},
        outputs={EVALUATION_KEY: ModelEvaluation, BLESSING_KEY: ModelBlessing},
        parameters={
            EVALUATE_FN_KEY: Parameter(str, user_code=True),
            THRESHOLDS_KEY: Parameter(str, "{}", "JSON: metric -> {min|max|max_metric}"),
            COMPARISON_METRIC_KEY: Parameter(str),
            HIGHER_IS_BETTER_KEY: Parameter(bool, True),
            TOLERANCE_KEY: Parameter(
                float, 0.01, "relative degradation allowed against the published model", check=within(0, 1)
            ),
            BASELINE_DIR_KEY: Parameter(
                str, None, "<serving-dir>/<model>; its newest version is the last blessed model"
            ),
            SPLIT_KEY: Parameter(str, "test"),
        },
    )
    EXECUTOR = ExecutorRef("components.evaluator.executor:EvaluatorExecutor")
