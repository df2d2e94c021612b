import csv
import random

import numpy as np
import pytest

from conftest import random_protein, run_cli, write_fasta
from nesscan.fuse import (annotate_phi, fit_fusion, component_scores, pooled_windows, similarity_raw,
                          window_motif_features, fit_centroids)
from nesscan.motifs import CLASSES, kosugi_matches, residue_motif_tracks, wregex_matches

PKI = "NSNELALKLAGLDINK"  # PKIα NES LALKLAGLDI with flanks
REV = "DLQLPPLERLTLDC"  # HIV-1 Rev NES LQLPPLERLTL with flanks


def _tsv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_kosugi_classes_spacing():
    assert CLASSES["1a"] == (0, 4, 7, 9) and CLASSES["2"] == (0, 2, 5, 7) and CLASSES["3"] == (0, 3, 7, 10)
    assert CLASSES["1aR"] == (0, 2, 5, 9)  # reverse classes mirror the spacing


def test_pki_and_rev_match_their_classes():
    cls, phi = annotate_phi(PKI, 1, len(PKI))
    assert cls.startswith("1a") and phi[-4:] == [5, 9, 12, 14]  # L-x3-L-x2-L-x-I
    cls, phi = annotate_phi(REV, 1, len(REV))
    assert cls.startswith("1b") and phi[-4:] == [4, 7, 10, 12]  # L-x2-L-x2-L-x-L
    assert wregex_matches("SELALKLAGLDIDE")  # Wregex finds PKIα's NES with acidic flanks
    assert any(m.motif_class.startswith("1a") for m in kosugi_matches(PKI))


def test_shuffled_controls_lose_the_motif():
    rng = random.Random(0)
    native = "LALKLAGLDI"
    hits = 0
    for _ in range(200):
        s = list(native)
        rng.shuffle(s)
        hits += bool(kosugi_matches("".join(s)))
    assert kosugi_matches(native)
    assert hits / 200 < 0.5, hits  # most shuffles of the same letters are no NES consensus
    assert not kosugi_matches("AAAKAAGADA")  # Φ -> A mutant


def test_reverse_class_and_at_tolerance():
    rev = "KKLKLKKLKKKLKK"  # Φ at 3,5,8,12: spacing 2,3,4 = reverse 1a
    cls, phi = annotate_phi(rev, 1, len(rev))
    assert cls == "1aR" and phi == [3, 5, 8, 12]
    at = "KKAKKKTKKLKLKK"  # A/T at Φ1/Φ2 of a 1a spacing
    assert not kosugi_matches(at)
    m = kosugi_matches(at, at_tolerant=True)
    assert m and m[0].at_tolerant and annotate_phi(at, 1, len(at))[0] == "1a-AT"


def test_phi0_extension():
    pki_type = "KLKKLKKKLKKLKLKK"  # Φ0-x2-Φ1 then a 1a spacing
    cls, phi = annotate_phi(pki_type, 1, len(pki_type))
    assert cls == "1a+phi0" and phi == [2, 5, 9, 12, 14]


def _annotate_phi_by_slicing(seq, start, end):
    """The definition annotate_phi implements: scan the window and 8 residues either side."""
    from nesscan.motifs import PHI
    from nesscan.scoring import CLASS_PRIOR

    lo, hi = start - 1, end - 1
    sub_from = max(0, lo - 8)
    sub = seq[sub_from : min(len(seq), hi + 9)]
    best, best_key = None, None
    for tolerant in (False, True):
        for m in kosugi_matches(sub, at_tolerant=tolerant):
            phi = [p + sub_from for p in m.phi]
            core = phi[-4:]
            if sum(lo <= p <= hi for p in core) < 3:
                continue
            base = m.motif_class.split("+")[0]
            extra = len(phi) > 4
            if base.endswith("R") and core[-1] + 3 < len(seq) and seq[core[-1] + 3] in PHI:
                phi, extra = core + [core[-1] + 3], True
            key = (not tolerant, CLASS_PRIOR.get(base, 0), extra, sum(seq[p] == "L" for p in phi),
                   -abs((core[0] + core[-1]) / 2 - (lo + hi) / 2))
            if best_key is None or key > best_key:
                suffix = "+phi0" if extra else ""
                best, best_key = (base + ("-AT" if tolerant else "") + suffix, [p + 1 for p in phi]), key
    return best if best else ("none", [])


def test_annotate_phi_reads_the_protein_scan_as_a_scan_of_the_window_would():
    # annotate_phi filters the whole protein's (cached) matches instead of scanning each window's
    # neighbourhood (8 residues either side): the answers must be those of the scan
    rng = random.Random(11)
    n = 0
    for _ in range(60):
        seq = random_protein(rng, rng.randint(20, 160), "LLIVFMAATKKDEESQG")
        for start in range(1, len(seq) - 18, 2):
            got = annotate_phi(seq, start, start + 19)
            assert got == _annotate_phi_by_slicing(seq, start, start + 19), (seq, start)
            n += got[0] != "none"
    assert n > 500  # the sequences are motif-rich: most windows hold a match


def test_motif_tracks_and_window_features_agree():
    seq = "K" * 10 + PKI + "K" * 20
    tr = residue_motif_tracks(seq)
    assert tr.shape == (len(seq), 3) and tr[10 + 4, 0] > 0 and tr[0, 0] == 0
    f = window_motif_features(seq, 20)
    assert f.shape == (len(seq) - 19, 6)
    assert f[5, 0] == 1.0  # window 6..25 holds the whole 1a match (14..23)
    assert f[len(seq) - 20, 0] == 0.0  # the last window does not


def test_pooled_windows_and_similarity():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 4))
    pw = pooled_windows(emb, 5)
    np.testing.assert_allclose(pw[3], emb[3:8].mean(0))
    pos = rng.normal(loc=2.0, size=(40, 4))
    neg = rng.normal(loc=-2.0, size=(40, 4))
    refs = fit_centroids(pos, neg, k=4)
    assert similarity_raw(np.full((1, 4), 2.0), refs)[0] > 0 > similarity_raw(np.full((1, 4), -2.0), refs)[0]


def test_fusion_is_learned_and_uses_components():
    rng = np.random.default_rng(1)
    n = 400
    y = (rng.random(n) < 0.3).astype(float)
    nn = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(scale=0.2, size=n), 0.01, 0.99)
    mf = np.stack([y * (rng.random(n) < 0.8), rng.random(n) < 0.2, np.zeros(n), y * (rng.random(n) < 0.5),
                   np.zeros(n), rng.integers(0, 3, n)], 1).astype(float)
    sr = 0.1 * (y - 0.5) + rng.normal(scale=0.05, size=n)
    params = fit_fusion(nn, mf, sr, y)
    comps = component_scores(params, nn, mf, sr)
    from sklearn.metrics import roc_auc_score

    auc = {k: roc_auc_score(y, v) for k, v in comps.items()}
    assert auc["fused_score"] > max(auc["nn_score"], auc["motif_score"], auc["similarity_score"])
    assert params["fusion"]["coef"][1] > 0  # the motif component is weighted positively


def _parse_gff3(path):
    lines = open(path).read().splitlines()
    assert lines[0] == "##gff-version 3"
    feats, regions = [], {}
    for line in lines[1:]:
        if line.startswith("##sequence-region"):
            _, sid, a, b = line.split()
            regions[sid] = (int(a), int(b))
            continue
        cols = line.split("\t")
        assert len(cols) == 9, line
        attrs = dict(kv.split("=", 1) for kv in cols[8].split(";"))
        feats.append((cols, attrs))
    return feats, regions


def test_fuse_cli_matches_predict_and_gff3_is_valid(tmp_path, tiny_model):
    rng = random.Random(4)
    recs = [("with;odd=id", random_protein(rng, 40) + PKI + random_protein(rng, 40)), ("plain", random_protein(rng, 90)),
            ("tiny", "MKLV")]
    fasta = write_fasta(tmp_path / "in.fasta", recs)
    assert run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5", "--context", "none").returncode == 0
    assert run_cli("window-score", "-e", tmp_path / "e.h5", "-m", tiny_model, "-o", tmp_path / "w.tsv.gz").returncode == 0
    r = run_cli("fuse", "-w", tmp_path / "w.tsv.gz", "-e", tmp_path / "e.h5", "-m", tiny_model, "-o", tmp_path / "fuse")
    assert r.returncode == 0, r.stderr
    r = run_cli("predict", "-i", fasta, "-m", tiny_model, "-o", tmp_path / "pred")
    assert r.returncode == 0, r.stderr
    assert [row["id"] for row in _tsv(tmp_path / "fuse" / "proteins.tsv")] == [pid for pid, _ in recs]  # input order
    a = {(row["id"], row["rank"]): row for row in _tsv(tmp_path / "fuse" / "candidates.tsv")}
    b = {(row["id"], row["rank"]): row for row in _tsv(tmp_path / "pred" / "candidates.tsv")}
    assert a.keys() == b.keys()
    for k in a:
        assert a[k]["start"] == b[k]["start"] and abs(float(a[k]["fused_score"]) - float(b[k]["fused_score"])) < 2e-4
    cols = list(next(iter(b.values())))
    for c in ("nn_score", "motif_score", "similarity_score", "fused_score", "motif_class", "phi_positions", "accessibility"):
        assert c in cols
    for row in b.values():
        assert row["score"] == row["fused_score"]
        for p in filter(None, row["phi_positions"].split(";")):
            assert int(row["start"]) <= int(p) <= int(row["end"])
    # GFF3 parses back: coordinates inside the sequence region, children point to parents
    feats, regions = _parse_gff3(tmp_path / "pred" / "candidates.gff3")
    ids = {attrs["ID"] for _, attrs in feats}
    lengths = {pid: len(s) for pid, s in recs}
    assert "with%3Bodd%3Did" in regions and regions["with%3Bodd%3Did"] == (1, lengths["with;odd=id"])
    n_nes = 0
    for cols, attrs in feats:
        assert cols[1] == "nesscan" and cols[2] in ("nuclear_export_signal", "binding_site")
        assert 1 <= int(cols[3]) <= int(cols[4]) <= regions[cols[0]][1]
        if cols[2] == "binding_site":
            assert attrs["Parent"] in ids and attrs["Ontology_term"] == "SO:0000409"
            assert attrs["ID"].split(".")[-2] == "phi" + attrs["Name"][1:]  # Φk sits in pocket Pk
        else:
            n_nes += 1
            assert attrs["Ontology_term"] == "SO:0001531"
    assert n_nes == len(b)


def test_phi_pockets_follow_the_orientation():
    from nesscan.report import phi_pockets

    assert phi_pockets("1a", 4) == [1, 2, 3, 4] and phi_pockets("1a+phi0", 5) == [0, 1, 2, 3, 4]
    assert phi_pockets("1c-AT+phi0", 5) == [0, 1, 2, 3, 4]
    # reverse classes bind in the minus orientation: Φ4 first, the extra residue after the core is Φ0
    assert phi_pockets("1aR", 4) == [4, 3, 2, 1] and phi_pockets("2R-AT+phi0", 5) == [4, 3, 2, 1, 0]
    assert phi_pockets("none", 0) == []


def test_is_reverse_reads_the_class_names_nesscan_writes():
    from nesscan.motifs import CLASSES, is_reverse

    assert [k for k in CLASSES if is_reverse(k)] == ["1aR", "1bR", "1cR", "1dR", "2R", "3R"]
    assert is_reverse("2R-AT+phi0") and is_reverse("1cR+phi0") and is_reverse("3R-AT")
    assert not any(is_reverse(k) for k in ("1a-AT+phi0", "3", "none", "", None))


def test_gff3_pockets_of_a_reverse_nes(tmp_path, tiny_model):
    # a class-1cR core (spacings 1, 3, 3) with the mirrored Φ0 three residues after it; no other
    # consensus match, and one window covers it all
    seq = "GE" + "LSLSSSLSSSLSSLSS" + "GE"
    fasta = write_fasta(tmp_path / "in.fasta", [("rev", seq)])
    r = run_cli("predict", "-i", fasta, "-m", tiny_model, "-o", tmp_path / "pred")
    assert r.returncode == 0, r.stderr
    row = _tsv(tmp_path / "pred" / "candidates.tsv")[0]
    assert row["motif_class"] == "1cR+phi0" and row["phi_positions"] == "3;5;9;13;16", row
    feats, _ = _parse_gff3(tmp_path / "pred" / "candidates.gff3")
    names = {int(c[3]): a["Name"] for c, a in feats if c[2] == "binding_site"}
    assert [names[p] for p in (3, 5, 9, 13, 16)] == ["P4", "P3", "P2", "P1", "P0"]


def test_fuse_refuses_mismatched_tables(tmp_path, tiny_model):
    fasta = write_fasta(tmp_path / "in.fasta", [("a", "MKLVLLALKLAGLDIKKKKEEEDDD")])
    assert run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5", "--context", "none").returncode == 0
    (tmp_path / "w.tsv").write_text("id\tstart\tend\tscore\nzzz\t1\t20\t0.5\n")
    r = run_cli("fuse", "-w", tmp_path / "w.tsv", "-e", tmp_path / "e.h5", "-m", tiny_model, "-o", tmp_path / "o")
    assert r.returncode == 2 and "'zzz'" in r.stderr and "not in" in r.stderr
    assert not (tmp_path / "o" / "candidates.tsv").exists()


@pytest.mark.parametrize("text", ["", "a\tb\n"])
def test_fuse_refuses_non_window_tables(tmp_path, tiny_model, text):
    fasta = write_fasta(tmp_path / "in.fasta", [("a", "MKLVLLALKLAGLDIKKKKEEEDDD")])
    assert run_cli("embed", "-i", fasta, "-o", tmp_path / "e.h5", "--context", "none").returncode == 0
    (tmp_path / "w.tsv").write_text(text)
    r = run_cli("fuse", "-w", tmp_path / "w.tsv", "-e", tmp_path / "e.h5", "-m", tiny_model, "-o", tmp_path / "o")
    assert r.returncode == 2 and "not a window-score table" in r.stderr


def test_gather_chunks_equals_whole_run(tmp_path, tiny_model):
    rng = random.Random(8)
    recs = [(f"p{i}", random_protein(rng, rng.randint(15, 70))) for i in range(6)]
    whole = write_fasta(tmp_path / "all.fasta", recs)
    parts = [write_fasta(tmp_path / "c1.fasta", recs[:2]), write_fasta(tmp_path / "c2.fasta", recs[2:])]
    assert run_cli("predict", "-i", whole, "-m", tiny_model, "-o", tmp_path / "whole").returncode == 0
    for k, part in enumerate(parts):
        assert run_cli("predict", "-i", part, "-m", tiny_model, "-o", tmp_path / f"c{k}").returncode == 0
    args = []
    for kind, name in (("--proteins", "proteins.tsv"), ("--candidates", "candidates.tsv"), ("--gff3", "candidates.gff3")):
        args += [kind] + [tmp_path / f"c{k}" / name for k in range(2)]
    r = run_cli("gather", *args, "-o", tmp_path / "gathered", "--sample", "all", "-m", tiny_model)
    assert r.returncode == 0, r.stderr
    for name in ("proteins.tsv", "candidates.tsv", "candidates.gff3"):
        assert (tmp_path / "gathered" / name).read_text() == (tmp_path / "whole" / name).read_text()
    # the run's statistics (calls beside what chance gives at the model's cutoff) as predict's
    stats = "nesscan_predict_stats_mqc.yaml"
    assert (tmp_path / "gathered" / stats).read_text() == (tmp_path / "whole" / stats).read_text()
    # the same protein in two chunks is refused
    r = run_cli("gather", "--proteins", tmp_path / "c0" / "proteins.tsv", tmp_path / "c0" / "proteins.tsv",
                "--candidates", tmp_path / "c0" / "candidates.tsv", tmp_path / "c0" / "candidates.tsv",
                "--gff3", tmp_path / "c0" / "candidates.gff3", tmp_path / "c0" / "candidates.gff3", "-o", tmp_path / "dup")
    assert r.returncode == 2 and "'p0' is in both" in r.stderr
    assert not (tmp_path / "dup" / "proteins.tsv").exists()
    # a chunk whose call count is not a number: one line naming the file and the protein
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = (tmp_path / "c1" / "proteins.tsv").read_text().splitlines()
    cols = lines[1].split("\t")
    cols[-1] = "many"
    (bad / "proteins.tsv").write_text("\n".join([lines[0], "\t".join(cols)] + lines[2:]) + "\n")
    r = run_cli("gather", "--proteins", tmp_path / "c0" / "proteins.tsv", bad / "proteins.tsv",
                "--candidates", tmp_path / "c0" / "candidates.tsv", tmp_path / "c1" / "candidates.tsv",
                "--gff3", tmp_path / "c0" / "candidates.gff3", tmp_path / "c1" / "candidates.gff3", "-o", tmp_path / "badout")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "n_high_confidence" in r.stderr and "'many'" in r.stderr and str(bad / "proteins.tsv") in r.stderr
    assert not (tmp_path / "badout" / "proteins.tsv").exists()
