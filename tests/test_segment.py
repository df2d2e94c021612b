import numpy as np

from nesscan.segment import segment, segment_scores


def test_planted_change_points_are_recovered():
    rng = np.random.default_rng(0)
    bounds = [0, 12, 30, 41, 60, 78, 90]
    means = rng.normal(scale=3.0, size=(len(bounds) - 1, 16))
    emb = np.concatenate([m + rng.normal(scale=0.3, size=(b - a, 16)) for m, (a, b) in zip(means, zip(bounds, bounds[1:]))])
    segs = segment(emb, 8, 25)
    assert [a for a, _ in segs] == bounds[:-1]
    assert segs[-1][1] == 90


def test_lengths_respected_and_cover_protein():
    rng = np.random.default_rng(1)
    for L in (5, 8, 9, 33, 100, 251):
        segs = segment(rng.normal(size=(L, 4)), 8, 25)
        assert segs[0][0] == 0 and segs[-1][1] == L
        assert all(b == c for (_, b), (c, _) in zip(segs, segs[1:]))
        if L > 8:
            assert all(8 <= b - a <= 25 for a, b in segs)


def test_segment_scores_use_centred_window():
    scores = np.arange(10, dtype=float)  # windows of W=5 on L=14
    assert list(segment_scores(scores, [(0, 3), (4, 13)], 14, 5)) == [0.0, 6.0]


def test_window_score_segments_cli(tmp_path, tiny_model):
    import csv
    import gzip
    import random

    from conftest import random_protein, run_cli, write_fasta

    rng = random.Random(2)
    fasta = write_fasta(tmp_path / "a.fasta", [("a", random_protein(rng, 70)), ("b", random_protein(rng, 6))])
    assert run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5", "--context", "none").returncode == 0
    r = run_cli("window-score", "-e", tmp_path / "e.h5", "-m", tiny_model, "-o", tmp_path / "s.tsv.gz", "--candidates", "segments")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(gzip.open(tmp_path / "s.tsv.gz", "rt"), delimiter="\t"))
    a = [(int(x["start"]), int(x["end"])) for x in rows if x["id"] == "a"]
    assert a[0][0] == 1 and a[-1][1] == 70 and all(8 <= e - s + 1 <= 25 for s, e in a)
    assert [(int(x["start"]), int(x["end"])) for x in rows if x["id"] == "b"] == [(1, 6)]
