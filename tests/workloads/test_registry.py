"""The workload registry: every module under benchkit/workloads/ that owns suite keys, in
its ORDER; a suite entry no workload owns is refused with the registered keys."""

from __future__ import annotations

import pytest

from benchkit import workloads
from benchkit.core.errors import BenchkitError


def test_the_shipped_workloads_in_their_order() -> None:
    names = [m.__name__.removeprefix("benchkit.workloads.") for m in workloads.modules()]
    assert names == ["tokens", "chat", "ppl.workload", "serve.workload"]


def test_an_entry_no_workload_owns_names_every_registered_one() -> None:
    with pytest.raises(BenchkitError) as err:
        workloads.parse({"bench": 3}, file="suite.yaml", field="workloads[0]")
    for module in workloads.modules():
        for key in module.main_keys():
            assert f"{{{key}: ...}}" in err.value.message
