import numpy as np
import pytest

from glassbox.mlp import ReLUNet
from glassbox.oracle.core import QueryBudgetExceeded, net_oracle


def test_counts_rows_by_phase_and_budget_fires_at_exactly_the_budget():
    oracle = net_oracle(ReLUNet.random("3-4-2", seed=0), budget=10)
    with oracle.phase("search"):
        oracle.query(np.zeros((4, 3)))
        with oracle.phase("inner"):
            oracle.query(np.zeros((1, 3)))
    oracle.query(np.zeros((5, 3)))  # exactly the budget: allowed
    assert oracle.queries == 10
    assert oracle.queries_by_phase == {"search": 4, "inner": 1, "other": 5}
    with pytest.raises(QueryBudgetExceeded):
        oracle.query(np.zeros((1, 3)))
    assert oracle.queries == 10
