"""The handwritten digits bundled with scikit-learn (1,797 images of 8x8), upsampled to 32x32,
and a small classifier used to check generated digits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DIGITS_SIZE = 32
#: the classes of the digits, by label: what the card lists and ``--label`` accepts
DIGIT_CLASS_NAMES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
#: the digits' names in words, also accepted as labels
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def digits_dataset(size: int = DIGITS_SIZE) -> tuple[torch.Tensor, np.ndarray]:
    """(images (N, 1, size, size) in [-1, 1], labels (N,)). No download: the data ships in
    scikit-learn's wheel."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]  # 0..1
    x = F.pad(x, (1, 1, 1, 1))  # a dark frame like MNIST's margin: 10x10
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return x * 2.0 - 1.0, d.target.copy()


def _features(images: torch.Tensor) -> np.ndarray:
    """Downsample (N,1,32,32) [-1,1] images back to the 8x8 digit grid (0..16 scale)."""
    x = (images.float().clamp(-1, 1) + 1) / 2
    x = F.interpolate(x, size=(10, 10), mode="area")[:, :, 1:-1, 1:-1]
    return (x.reshape(len(x), -1).numpy() * 16.0).astype(np.float64)


class DigitsClassifier:
    """A classifier of the real digits, on their 8x8 grid: ``method="logistic"`` (logistic
    regression, 96 % held-out accuracy; the unconditional digits check) or ``"svm"`` (an RBF
    support-vector machine, 99 %; the conditional check, which needs >= 97 %).
    ``test_accuracy`` is measured on a held-out quarter; the classifier is then refit on all."""

    def __init__(self, seed: int = 0, method: str = "logistic"):
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.svm import SVC

        imgs, labels = digits_dataset()
        feats = _features(imgs)
        xtr, xte, ytr, yte = train_test_split(feats, labels, test_size=0.25, random_state=seed)
        if method not in ("logistic", "svm"):
            raise ValueError(f"unknown classifier {method!r}: logistic or svm")
        self.method = method
        self.clf = SVC(C=5.0, gamma="scale") if method == "svm" else \
            LogisticRegression(max_iter=3000, C=0.5)
        self.clf.fit(xtr, ytr)
        self.test_accuracy = float(self.clf.score(xte, yte))
        self.clf.fit(feats, labels)

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """The class of each (N, 1, 32, 32) picture in [-1, 1]."""
        return self.clf.predict(_features(images))

    def predict_proba(self, images: torch.Tensor) -> np.ndarray:
        return self.clf.predict_proba(_features(images))

    def check(self, images: torch.Tensor) -> dict:
        """Mean top-class confidence and the share of each predicted class."""
        p = self.predict_proba(images)
        pred = p.argmax(1)
        shares = np.bincount(pred, minlength=10) / len(pred)
        return {"mean_confidence": float(p.max(1).mean()),
                "class_shares": [round(float(s), 4) for s in shares],
                "min_class_share": float(shares.min()),
                "n": int(len(pred))}
