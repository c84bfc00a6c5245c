"""docs/batch-models.md: every recipe compiles and its gradient agrees with central differences."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.gradcheck import check_gradients, random_feed

PAGE = Path(__file__).resolve().parent.parent / "docs" / "batch-models.md"
RECIPES = {
    heading: block
    for heading, block in re.findall(
        r"^## (.+?)\n.*?```gc\n(.*?)```", PAGE.read_text("utf-8"), re.S | re.M
    )
}


def test_the_page_has_its_recipes():
    assert set(RECIPES) == {
        "Logistic regression",
        "Softmax regression",
        "A multilayer perceptron",
        "Attention, one head",
        "Layer normalisation over rows",
    }


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_gradients_agree_with_central_differences(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", graphc.GraphcWarning)  # a recipe says what it means
        fn = graphc.compile(RECIPES[name])
    sizes = {"N": 5, "T": 3, "d": 4}
    feed = random_feed(fn.lowered, {k: v for k, v in sizes.items() if k in fn.lowered.dims})
    if "t" in feed:
        feed["t"] = (feed["t"] > 0).astype(float)
    report = check_gradients(fn, feed)
    assert report.finite and report.worst <= report.tolerance, report
    value = fn(**feed)
    assert np.isfinite(value)
