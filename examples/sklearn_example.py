"""scikit-learn with modeltrack: a Pipeline and a GridSearchCV, one version each.

    python examples/sklearn_example.py            # then: modeltrack versions breast-cancer-search

Every outermost ``fit`` inside a function decorated with ``autolog`` becomes a version with
its params, training metrics, data fingerprints and the fitted model; what the function then
computes on held-out data (``score``, ``sklearn.metrics``) is added as ``test_*`` metrics.
Runs in a few seconds on a CPU.
"""

from __future__ import annotations

from typing import Any

from sklearn import metrics
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import modeltrack as mt
from modeltrack.integrations.sklearn import autolog


def make_pipeline(C: float = 1.0) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=C, max_iter=500))])


@autolog(model="breast-cancer")
def train_pipeline(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Pipeline:
    pipe = make_pipeline(C=0.5).fit(X_train, y_train)
    print(f"pipeline test accuracy: {pipe.score(X_test, y_test):.3f}")  # logged as test_score
    return pipe


@autolog(model="breast-cancer-search", max_candidates=3)
def train_search(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> GridSearchCV:
    search = GridSearchCV(make_pipeline(), {"clf__C": [0.01, 0.1, 1.0, 10.0]}, cv=3, scoring="f1")
    search.fit(X_train, y_train)
    f1 = metrics.f1_score(y_test, search.predict(X_test))  # logged as test_f1_score
    print(f"search best C={search.best_params_['clf__C']}, test F1: {f1:.3f}")
    return search


def main() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    train_pipeline(X_train, y_train, X_test, y_test)
    search = train_search(X_train, y_train, X_test, y_test)

    for name in ("breast-cancer", "breast-cancer-search"):
        latest = mt.versions(name)[-1]
        shown = ", ".join(f"{k}={v:.3f}" for k, v in latest["metrics"].items() if k.startswith(("test_", "best_")))
        print(f"{name}@v{latest['version']} {latest['status']}: {shown}")
    rec = mt.show("breast-cancer-search")
    print("top candidates:", [(row["rank"], row["params"]) for row in rec["info"]["top_candidates"]])
    model = mt.load("breast-cancer-search", trust=True)  # the GridSearchCV, refitted on the best C
    print(f"reloaded model predicts the same: {(model.predict(X_test) == search.predict(X_test)).all()}")


if __name__ == "__main__":
    main()
