"""The linear probe: logistic regression on standardised embeddings, one per layer.

scikit-learn's ``StandardScaler`` -> ``LogisticRegression`` (L2, C=1, lbfgs), fitted on the
training part only (the scaler too), fixed seeds.  Splits, in this order of preference:

* the dataset's own train/test split (Speech Commands lists, a manifest's ``split`` column):
  fit on ``train``, score on ``test``;
* the dataset's own folds (ESC-50): leave one fold out, mean over folds;
* otherwise stratified k-fold (``k = min(5, smallest class)``, shuffled with the seed).

The metric is accuracy (fraction of test clips classified correctly); the chance level of a
majority-class guess is reported beside it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

METRIC = "accuracy (linear probe)"


@dataclass
class Split:
    train: np.ndarray
    test: np.ndarray
    name: str


@dataclass
class ProbeResult:
    per_layer: list[float]
    per_layer_std: list[float]
    method: str
    n_splits: int
    chance: float
    best_layer: int = field(init=False)

    def __post_init__(self) -> None:
        self.best_layer = int(np.argmax(self.per_layer))

    @property
    def best(self) -> float:
        return self.per_layer[self.best_layer]

    @property
    def last(self) -> float:
        return self.per_layer[-1]


def make_splits(labels: list[str], splits: list[str | None], method: str, seed: int = 0,
                folds: int = 5) -> tuple[list[Split], str]:
    """The train/test index sets for ``method`` (``given``, ``folds`` or ``kfold``)."""
    y = np.asarray(labels)
    s = np.asarray([x or "" for x in splits])
    if method == "given":
        train, test = np.flatnonzero(s == "train"), np.flatnonzero(s == "test")
        if len(train) and len(test) and len(set(y[train])) > 1:
            return [Split(train, test, "train/test")], "the dataset's train/test split"
    if method == "folds":
        names = sorted(set(s))
        if len(names) > 1:
            return ([Split(np.flatnonzero(s != f), np.flatnonzero(s == f), f) for f in names],
                    f"the dataset's {len(names)} folds (leave one out)")
    # deferred: scikit-learn is needed only by the probe of make eval
    from sklearn.model_selection import StratifiedKFold

    smallest = min(np.unique(y, return_counts=True)[1])
    k = int(min(folds, smallest))
    if k < 2:
        raise ValueError(f"every class needs at least 2 clips for a cross-validated probe; the smallest has {smallest}")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = [Split(tr, te, f"fold{i + 1}") for i, (tr, te) in enumerate(skf.split(np.zeros(len(y)), y))]
    return out, f"stratified {k}-fold cross-validation (seed {seed})"


def _fit_score(x: np.ndarray, y: np.ndarray, split: Split, seed: int, c: float) -> float:
    # deferred: scikit-learn is needed only by the probe of make eval
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    # deferred: scikit-learn is needed only by the probe of make eval
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x[split.train], y[split.train])
    return float((clf.predict(x[split.test]) == y[split.test]).mean())


def probe_layers(layers: np.ndarray, labels: list[str], splits: list[Split], method: str,
                 seed: int = 0, c: float = 1.0) -> ProbeResult:
    """Accuracy of a linear probe on every layer of ``layers`` (L, n, D)."""
    y = np.asarray(labels)
    means, stds = [], []
    for layer in layers:
        x = np.nan_to_num(layer.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        scores = [_fit_score(x, y, sp, seed, c) for sp in splits]
        means.append(float(np.mean(scores)))
        stds.append(float(np.std(scores)))
    test = np.concatenate([sp.test for sp in splits])
    _, counts = np.unique(y[test], return_counts=True)
    chance = float(counts.max() / counts.sum())
    return ProbeResult(means, stds, method, len(splits), chance)
