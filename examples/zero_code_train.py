"""A plain scikit-learn training script: no modeltrack import, no tracking code.

Run it with autologging on, and every fit becomes a version:

    modeltrack run --model wine -- python examples/zero_code_train.py
    MODELTRACK_AUTOLOG=1 python examples/zero_code_train.py     # same, without the wrapper
"""

import argparse

from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-estimators", type=int, default=20)
    parser.add_argument("--max-depth", type=int, default=4)
    args = parser.parse_args()

    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    model = RandomForestClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=0)
    model.fit(X_train, y_train)
    print(f"test accuracy: {accuracy_score(y_test, model.predict(X_test)):.3f}")


if __name__ == "__main__":
    main()
