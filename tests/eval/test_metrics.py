"""Every metric against hand-computed values and against scikit-learn where it has the metric."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from facevlm.eval import metrics as M


def test_classification_hand_values():
    # 5 items, 3 classes; top-1 predictions: 0, 1, 1, 2, 0
    scores = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    labels = np.array([0, 1, 0, 2, 1])
    out = M.classification_fn(scores, labels, ["a", "b", "c"], topk=(1, 2))(np.arange(5))
    assert out["acc1"] == pytest.approx(3 / 5)
    assert out["acc2"] == pytest.approx(5 / 5)  # item 2: second choice 0; item 4: second choice 1
    assert out["recall/a"] == pytest.approx(1 / 2)
    assert out["recall/b"] == pytest.approx(1 / 2)
    assert out["recall/c"] == pytest.approx(1.0)
    assert out["balanced_accuracy"] == pytest.approx((0.5 + 0.5 + 1) / 3)


def test_classification_matches_sklearn():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(300, 6))
    labels = rng.integers(0, 6, 300)
    labels[:40] = scores[:40].argmax(1)
    out = M.classification_fn(scores, labels, list("abcdef"))(np.arange(300))
    pred = scores.argmax(1)
    assert out["acc1"] == pytest.approx(skm.accuracy_score(labels, pred))
    assert out["acc5"] == pytest.approx(skm.top_k_accuracy_score(labels, scores, k=5, labels=range(6)))
    assert out["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, pred))
    recalls = skm.recall_score(labels, pred, average=None)
    assert [out[f"recall/{c}"] for c in "abcdef"] == pytest.approx(list(recalls))


def test_multilabel_hand_and_sklearn():
    scores = np.array([[0.9, -1.0], [0.2, 0.5], [-0.3, 0.4], [-0.8, -0.2]])
    targets = np.array([[1, 0], [0, 1], [1, -1], [0, 0]])
    out = M.multilabel_fn(scores, targets, ["x", "y"])(np.arange(4))
    # x: ranking .9(+) .2(-) -.3(+) -.8(-): AP = (1/1 + 2/3) / 2
    assert out["ap/x"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["ap/y"] == pytest.approx(1.0)  # item 2 unlabelled; .5(+) -.2(-) -1(-)
    assert out["acc/x"] == pytest.approx(2 / 4)  # predictions >0: T T F F vs 1 0 1 0
    assert out["acc/y"] == pytest.approx(3 / 3)
    assert out["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert out["mean_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(200, 5)), rng.integers(0, 2, (200, 5))
    out = M.multilabel_fn(s, t, list("abcde"))(np.arange(200))
    assert out["mAP"] == pytest.approx(skm.average_precision_score(t, s, average="macro"))
    assert out["acc/c"] == pytest.approx(skm.accuracy_score(t[:, 2], s[:, 2] > 0))


def test_retrieval_hand_values():
    sim = np.array(
        [
            [0.1, 0.9, 0.5, 0.3],  # positives {2, 3}: ranks 2, 3
            [0.8, 0.1, 0.2, 0.3],
        ]
    )  # positive {0}: rank 1
    pos = np.array([[0, 0, 1, 1], [1, 0, 0, 0]], dtype=bool)
    stats = M.rank_stats(sim, pos)
    assert stats.first_rank.tolist() == [2, 1]
    assert stats.ap == pytest.approx([(1 / 2 + 2 / 3) / 2, 1.0])
    out = M.retrieval_fn(stats, "image_retrieval", ks=(1, 5))(np.arange(2))
    assert out["image_retrieval_recall@1"] == 0.5
    assert out["image_retrieval_recall@5"] == 1.0
    assert out["image_retrieval_median_rank"] == 1.5
    assert out["image_retrieval_mAP"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1) / 2)


def test_retrieval_matches_sklearn_lrap():
    rng = np.random.default_rng(2)
    sim = rng.normal(size=(50, 80))
    pos = rng.random((50, 80)) < 0.05
    pos[np.arange(50), rng.integers(0, 80, 50)] = True
    stats = M.rank_stats(sim, pos)
    # label ranking average precision is the mean per-query AP (no ties in continuous scores)
    assert stats.ap.mean() == pytest.approx(skm.label_ranking_average_precision_score(pos, sim))
    for q in range(5):
        assert stats.ap[q] == pytest.approx(skm.average_precision_score(pos[q], sim[q]))
    with pytest.raises(ValueError):
        M.rank_stats(sim[:1], np.zeros((1, 80), bool))


def test_verification_hand_and_sklearn():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    genuine = np.array([1, 0, 1, 1, 0, 0], dtype=bool)
    # genuine beat impostors in 2 + 3 + 3 - ... pairs: (0.9 > all 3) + (0.7 > .5,.4) + (0.6 > .5,.4) = 7 of 9
    assert M.roc_auc(scores, genuine) == pytest.approx(7 / 9)
    assert M.roc_auc(scores, genuine) == pytest.approx(skm.roc_auc_score(genuine, scores))
    tied = np.array([0.5, 0.5, 0.2, 0.9])
    assert M.roc_auc(tied, np.array([1, 0, 0, 1], bool)) == pytest.approx(skm.roc_auc_score([1, 0, 0, 1], tied))
    assert np.isnan(M.tar_at_far(scores, genuine, 1e-3))  # 3 impostors cannot measure FAR 1e-3
    rng = np.random.default_rng(3)
    g = rng.random(6000) < 0.2
    s = rng.normal(size=6000) + 2.0 * g
    for far in (1e-3, 1e-2, 0.1):
        fpr, tpr, _ = skm.roc_curve(g, s)
        expected = tpr[fpr <= far].max()
        assert M.tar_at_far(s, g, far) == pytest.approx(expected)


def test_identity_rank1_hand():
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = np.array(["a", "a", "b", "b", "c"])  # c is alone: not a query
    queries, hits = M.identity_nn_hits(emb, ids)
    assert queries.tolist() == [0, 1, 2, 3]
    assert hits.tolist() == [True, True, True, True]
    ids2 = np.array(["a", "b", "b", "a", "c"])
    _, hits2 = M.identity_nn_hits(emb, ids2)
    assert hits2.tolist() == [False, False, False, False]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Yes, the person is smiling.", "yes person is smiling"),
        ("  NOPE ", "no"),
        ("There are Two faces!", "there are 2 faces"),
        ("An angry face", "angry face"),
        ("true", "yes"),
    ],
)
def test_normalize_answer(text, expected):
    assert M.normalize_answer(text) == expected


def test_per_type_accuracy():
    fn = M.grouped_accuracy_fn(np.array([1, 0, 1, 1]), np.array(["yn", "yn", "open", "open"]))
    out = fn(np.arange(4))
    assert out == {"accuracy": 0.75, "accuracy/open": 1.0, "accuracy/yn": 0.5}


def test_narrow_picks_the_member_that_computes_a_metric():
    a = M.mean_fn(np.array([1.0, 0.0]), "a")
    b = M.prefixed(M.mean_fn(np.array([0.0, 1.0]), "b"), "x/")
    fn = M.merged([a, M.merged([b])])
    items = np.arange(2)
    assert fn(items) == {"a": 0.5, "x/b": 0.5}
    assert M.narrow(fn, "x/b", items)(items) == {"x/b": 0.5}
    assert M.narrow(fn, "a", items) is a
    assert M.narrow(fn, "missing", items) is fn


def test_linear_probe_helpers():
    from facevlm.eval.tasks.linear_probe import few_shot_indices, fit_predict

    labels = np.array([0] * 10 + [1] * 3 + [2] * 7)
    sel = few_shot_indices(labels, 5, seed=0)
    assert np.bincount(labels[sel]).tolist() == [5, 3, 5]
    assert not np.array_equal(sel, few_shot_indices(labels, 5, seed=1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int) * 2  # classes 0 and 2 only: column 1 must stay 0
    probs = fit_predict(x[:40], y[:40], x[40:], n_classes=3, c=10.0, seed=0)
    assert probs.shape == (20, 3) and np.allclose(probs[:, 1], 0) and np.allclose(probs.sum(1), 1)
    assert np.mean(probs.argmax(1) == y[40:]) >= 0.9
