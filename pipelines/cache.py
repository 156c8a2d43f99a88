"""The cache key: when an earlier execution of a component may stand in for this one.

A component is not run again when an execution of the same component type, COMPLETE in
ML Metadata, has the same key. The key hashes, and only these:

- the component's class name and its id in the pipeline;
- its code version (`BaseComponent.code_version`): the source of its folder
  (component.py, executor.py and their helpers), so an edited executor runs again;
- its parameters (`BaseComponent.parameters_fingerprints`), with the source fingerprint of
  the user code that `user_code` parameters name (`run_fn`, `preprocessing_fn`,
  `evaluate_fn`: `components.base.functions.code_fingerprint` hashes the module and the
  first-party modules it imports), and for the files and folders that `data_path`
  parameters name (a CSV, an image folder, a curated schema) their content instead of
  their path (`components.base.functions.data_fingerprint`): data edited in place runs
  again, and the same data in another checkout or on another machine is a hit (off the
  local disk, `gs://` and the like, the path with each file's size and time, unread);
- the ML Metadata ids of its input artifacts, which stand for their content: an upstream
  component that ran again produced new artifacts, so everything downstream runs again.

Not in the key: Beam options (they change how, not what), the pipeline run, and where data
paths lie. The execution records the parameters with the paths (`CacheKey.parameters`).
"""

from __future__ import annotations

import dataclasses
import hashlib

from components.base import Artifact, BaseComponent


@dataclasses.dataclass(frozen=True)
class CacheKey:
    value: str  # what ML Metadata's executions are matched on
    code_version: str  # recorded with the execution, to tell why a later key differs
    parameters: str  # recorded with the execution: the parameters with their paths, and the fingerprints


def cache_key(component: BaseComponent, inputs: dict[str, list[Artifact]]) -> CacheKey:
    """The key of running `component` on `inputs` now (its source and user code read once)."""
    code_version, (recorded, keyed) = component.code_version(), component.parameters_fingerprints()
    digest = hashlib.sha256()
    digest.update(type(component).__name__.encode())
    digest.update(component.id.encode())
    digest.update(code_version.encode())
    digest.update(keyed.encode())
    for key in sorted(inputs):
        digest.update(f"{key}={[a.id for a in inputs[key]]}".encode())
    return CacheKey(digest.hexdigest(), code_version, recorded)
