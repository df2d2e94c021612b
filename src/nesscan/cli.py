"""The ``nesscan`` command. Every user-facing problem ends as one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import __version__
from .errors import NesscanError
from .fasta import DEFAULT_MAX_LENGTH

log = logging.getLogger("nesscan")

# scikit-learn imports joblib, which at import probes for a multiprocessing semaphore and warns on
# stderr when it cannot make one (a full disk, a file-size limit): nesscan never uses joblib's
# process pools, so the probe is switched off and errors stay one line
os.environ.setdefault("JOBLIB_MULTIPROCESSING", "0")

EMBEDDER_HELP = (
    "builtin (default: BLOSUM62 + physico-chemical scales + one-hot + local context, no weights "
    "needed) or an ESM-2 model: esm2_t6_8M_UR50D, esm2_t12_35M_UR50D, esm2_t30_150M_UR50D, "
    "esm2_t33_650M_UR50D, esm2_t36_3B_UR50D, esm2_t48_15B_UR50D (or esm2_<name> with --weights for "
    "a custom checkpoint)"
)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {v}")
    return v


def _probability(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {v}")
    return v


def _add_skip(p: argparse.ArgumentParser, where: str) -> None:
    p.add_argument("--skip-invalid", action="store_true",
                   help="skip invalid records (empty, duplicate ID, letters outside the protein alphabet, nucleotides, "
                        f"too long) instead of stopping, and list them (id, line, reason) in {where}")


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("logging")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _add_esm(p: argparse.ArgumentParser, with_layer: bool = True) -> None:
    g = p.add_argument_group("ESM-2 options (ignored by the builtin embedder)")
    g.add_argument("--weights", metavar="PATH",
                   help="ESM-2 checkpoint (.pt, fair-esm format). Default: $TORCH_HOME/hub/checkpoints/<model>.pt, "
                        "else downloaded from dl.fbaipublicfiles.com when online (set NESSCAN_OFFLINE=1 to forbid)")
    if with_layer:
        g.add_argument("--layer", type=int, default=None,
                       help="representation layer (default: the last; negative counts from the end)")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto = cuda when torch sees a GPU, else cpu; cuda falls back to cpu with a warning (default: auto)")


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v >= 0.0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {v}")
    return v


class _Removed(argparse.Action):
    """An option that no longer exists: a one-line error that names its replacement."""

    def __init__(self, option_strings, dest, replacement: str = "", **kw):
        self.replacement = replacement
        super().__init__(option_strings, dest, nargs=1, help=argparse.SUPPRESS, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} was removed: {self.replacement}")


MAX_EVALUE_HELP = ("flag a candidate high-confidence when its E-value (expected number of windows scoring at least "
                   "as high in a shuffled protein of the same length) is at most this (default: the model card's "
                   "cutoff, chosen by cross-validation)")


def _add_ranking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top-k", type=_positive_int, default=5, help="candidates reported per protein (default: 5)")
    p.add_argument("--max-evalue", type=_nonneg_float, default=None, metavar="E", help=MAX_EVALUE_HELP)
    p.add_argument("--threshold", action=_Removed,
                   replacement="high confidence is now an E-value cutoff, use --max-evalue E (a score threshold "
                               "ignored protein length and the background rate of NES-like windows)")
    p.add_argument("--structures", default=None, metavar="DIR",
                   help="optional folder of structure models named <id>.pdb/.cif or AF-<id>-F1-model_v4.pdb: "
                        "adds mean relative solvent accessibility (Shrake-Rupley) and pLDDT/B-factor per candidate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nesscan",
        description="Find and rank CRM1 nuclear export signals (NES) in protein sequences.",
        epilog="Run 'nesscan <command> --help' for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"nesscan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command", required=True)

    p = sub.add_parser("predict", help="FASTA -> ranked NES candidates and protein scores (the whole chain)",
                       description="Embed, score every window and rank non-overlapping NES candidates per protein. "
                                   "Writes OUTDIR/proteins.tsv and OUTDIR/candidates.tsv.")
    p.add_argument("-i", "--input", required=True, metavar="FASTA", help="protein FASTA file (plain or gzip/bgzip)")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("-m", "--model", default=None, metavar="DIR|NAME",
                   help="classifier directory (model.json + model.safetensors) or a shipped model name "
                        "(default: nesscan-builtin-v2); its card names the embedder")
    _add_ranking(p)
    p.add_argument("--max-length", type=_positive_int, default=DEFAULT_MAX_LENGTH,
                   help=f"refuse proteins longer than this (default: {DEFAULT_MAX_LENGTH})")
    _add_skip(p, "OUTDIR/skipped.tsv")
    _add_esm(p, with_layer=False)
    _add_common(p)

    p = sub.add_parser("embed", help="FASTA -> per-residue embeddings (HDF5)",
                       description="Embed every protein; one L x D dataset per protein. Re-running on the same "
                                   "output skips proteins already embedded with the same checksums.")
    p.add_argument("-i", "--input", required=True, metavar="FASTA", help="protein FASTA file (plain or gzip/bgzip)")
    p.add_argument("-o", "--output", required=True, metavar="H5", help="HDF5 output file")
    p.add_argument("-e", "--embedder", default="builtin", help=EMBEDDER_HELP)
    p.add_argument("--context", choices=["disorder", "none"], default="disorder",
                   help="extra per-residue channels: disorder = metapredict disorder and predicted pLDDT, as the "
                        "shipped model needs (default); none = the embedder's features only")
    p.add_argument("--max-batch-tokens", type=_positive_int, default=None,
                   help="token budget per batch, padding included (default: 1024 on CPU, 16384 on GPU for ESM-2)")
    p.add_argument("--half", action="store_true", help="store float16 (halves the file; scores change < 1e-3)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output instead of resuming it")
    p.add_argument("--max-length", type=_positive_int, default=DEFAULT_MAX_LENGTH,
                   help=f"refuse proteins longer than this (default: {DEFAULT_MAX_LENGTH})")
    _add_skip(p, "OUTPUT.skipped.tsv")
    _add_esm(p)
    _add_common(p)

    p = sub.add_parser("window-score", help="embeddings -> a score for every window",
                       description="Score every window (stride 1, size from the model card) of every protein.")
    p.add_argument("-e", "--embeddings", required=True, metavar="H5", help="HDF5 file from 'nesscan embed'")
    p.add_argument("-m", "--model", default=None, metavar="DIR|NAME", help="classifier (default: nesscan-builtin-v2)")
    p.add_argument("-o", "--output", required=True, metavar="TSV[.gz]",
                   help="all windows: id, start, end, score (gzip when the name ends in .gz)")
    p.add_argument("-s", "--summary", default=None, metavar="TSV",
                   help="per-protein best window: id, length, max_score, best_start, best_end, best_sequence "
                        "(default: OUTPUT with .summary.tsv)")
    p.add_argument("--candidates", choices=["windows", "segments"], default="windows",
                   help="windows: every window, stride 1 (default); segments: zero-shot change-point segments of the "
                        "embeddings (8-25 residues), each scored by the window centred on it")
    _add_common(p)

    p = sub.add_parser("fuse", help="window scores + embeddings -> ranked candidates with Φ residues (+ GFF3)",
                       description="Fuse the window classifier with consensus motifs and embedding similarity "
                                   "(weights learned and stored with the model), rank non-overlapping candidates, "
                                   "annotate their Φ residues and Kosugi class. Writes OUTDIR/proteins.tsv, "
                                   "OUTDIR/candidates.tsv and OUTDIR/candidates.gff3.")
    p.add_argument("-w", "--windows", required=True, metavar="TSV[.gz]", help="window scores from 'nesscan window-score'")
    p.add_argument("-e", "--embeddings", required=True, metavar="H5", help="the embeddings the windows were scored on")
    p.add_argument("-m", "--model", default=None, metavar="DIR|NAME", help="classifier (default: nesscan-builtin-v2)")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output directory (created if missing)")
    _add_ranking(p)
    _add_common(p)

    p = sub.add_parser("gather", help="concatenate per-chunk result tables (scatter/gather runs)",
                       description="Concatenate the proteins.tsv, candidates.tsv and candidates.gff3 of several "
                                   "chunks (in the order given), check headers and IDs, and write one set plus "
                                   "its MultiQC content to OUTDIR.")
    p.add_argument("--proteins", nargs="+", required=True, metavar="TSV", help="proteins.tsv of each chunk")
    p.add_argument("--candidates", nargs="+", required=True, metavar="TSV", help="candidates.tsv of each chunk")
    p.add_argument("--gff3", nargs="+", required=True, metavar="GFF3", help="candidates.gff3 of each chunk")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output directory")
    p.add_argument("--sample", default=None, help="run name in MultiQC (default: the output folder's name)")
    p.add_argument("--max-evalue", type=_nonneg_float, default=None, metavar="E",
                   help="E-value cutoff the chunks were called with (default: the cutoff of --model's card, the one "
                        "'nesscan fuse' called high_confidence at)")
    p.add_argument("-m", "--model", default=None, metavar="DIR|NAME",
                   help="model the chunks were fused with, for its E-value cutoff (default: nesscan-builtin-v2)")
    p.add_argument("--threshold", action=_Removed, replacement="use --max-evalue E")
    _add_common(p)

    p = sub.add_parser("explain", help="per-residue attributions (integrated gradients) and protein profile plots",
                       description="For the top candidates of every protein: integrated-gradients attributions of the "
                                   "window classifier per residue (OUTDIR/attributions.tsv), and profile plots (window "
                                   "scores, candidates, Φ residues, Kosugi/Wregex matches, attributions) as PNG/SVG under "
                                   "OUTDIR/profiles/ linked from OUTDIR/index.html.")
    p.add_argument("-i", "--input", required=True, metavar="FASTA", help="protein FASTA file (plain or gzip/bgzip)")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output directory")
    p.add_argument("-m", "--model", default=None, metavar="DIR|NAME", help="classifier (default: nesscan-builtin-v2)")
    p.add_argument("--top-k", type=_positive_int, default=3, help="candidates explained per protein (default: 3)")
    p.add_argument("--plots", type=int, default=20, help="profile plots for this many top-scoring proteins (default: 20)")
    p.add_argument("--steps", type=_positive_int, default=64, help="integration steps (default: 64)")
    _add_skip(p, "OUTDIR/skipped.tsv")
    _add_esm(p, with_layer=False)
    _add_common(p)

    p = sub.add_parser("train", help="train a window classifier with cluster-grouped cross-validation",
                       description="Train on data in the ../shared/data layout (proteins.fasta, proteins.tsv, "
                                   "nes_spans.tsv); writes OUTDIR/model.safetensors and OUTDIR/model.json.")
    p.add_argument("-d", "--data", required=True, metavar="DIR", help="data directory")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="model output directory")
    p.add_argument("-e", "--embedder", default="builtin", help=EMBEDDER_HELP)
    p.add_argument("--context", choices=["disorder", "none"], default="disorder",
                   help="append the disorder channels to the embeddings (default: disorder)")
    p.add_argument("--arch", choices=["transformer", "cnn", "mlp", "gbm", "stack"], default=None,
                   help="window model: a neural classifier (transformer, cnn, mlp), gradient-boosted trees on one-hot, "
                        "hydropathy and disorder (gbm), or the CNN and the trees stacked (stack; the default with the "
                        "built-in embedder, cnn with ESM-2: the trees read built-in channels)")
    p.add_argument("--compare-archs", default=None, metavar="A,B,...",
                   help="cross-validate these architectures (e.g. transformer,cnn,mlp) and keep the best "
                        "(pooled out-of-fold hit@1 of the fused score); the comparison goes into the model card")
    p.add_argument("--window", type=_positive_int, default=20, help="window size in residues (default: 20)")
    p.add_argument("--epochs", type=_positive_int, default=30, help="maximum epochs (default: 30)")
    p.add_argument("--patience", type=_positive_int, default=5, help="early-stopping patience in epochs (default: 5)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    p.add_argument("--dropout", type=float, default=None, help="dropout (default: the architecture's)")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds; 0 skips CV (default: 5)")
    p.add_argument("--no-phi-mutants", action="store_true", help="do not add Φ->A mutants of positives as hard negatives")
    p.add_argument("--neg-per-shuffled", type=int, default=0, metavar="N",
                   help="negatives from a composition-preserving shuffle of each training protein: up to N windows "
                        "centred on a chance consensus motif (default: 0)")
    p.add_argument("--phi-head", type=float, default=0.0, metavar="WEIGHT",
                   help="multitask: a per-residue head on the CNN's features learns the annotated Φ residues "
                        "(hydrophobic_positions) next to the window loss, with this weight; training only, the saved "
                        "network is unchanged (default 0: off)")
    p.add_argument("--listwise", type=float, default=0.0, metavar="WEIGHT",
                   help="add a within-protein listwise loss (softmax over each NES protein's windows, its NES "
                        "windows as the relevant ones) with this weight next to BCE (default: 0, BCE only)")
    p.add_argument("--tree-iterations", type=_positive_int, default=200,
                   help="boosting iterations (trees) of the gbm/stack window trees (default: 200)")
    p.add_argument("--tree-learning-rate", type=float, default=0.1, help="their learning rate (default: 0.1)")
    p.add_argument("--tree-leaves", type=_positive_int, default=31, help="leaves per tree at most (default: 31)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    _add_esm(p)
    _add_common(p)

    p = sub.add_parser("evaluate", help="predictions + labels -> metrics.json, plots and MultiQC content",
                       description="Evaluate nesscan predictions: protein-level ROC/PR AUC, F1, MCC, accuracy, "
                                   "precision and recall (MCC-optimal threshold, 0.5, 0.9) per task, each beside a "
                                   "composition+length baseline (--fasta); NES localisation inside annotated proteins "
                                   "(hit@1, hit@5, residue- and window-level AUC, Φ-residue F1, per motif class); "
                                   "Spearman vs CRM1 enrichment. Writes OUTDIR/metrics.json, PNG+SVG plots and "
                                   "MultiQC custom content (nesscan_*_mqc.*), all or nothing.")
    p.add_argument("-p", "--proteins", required=True, metavar="TSV", help="proteins.tsv from 'nesscan predict'/'fuse'")
    p.add_argument("-c", "--candidates", default=None, metavar="TSV",
                   help="candidates.tsv from 'nesscan predict'/'fuse' (hit@1/hit@5, Φ-residue F1 with --spans)")
    p.add_argument("-l", "--labels", required=True, metavar="TSV",
                   help="labels: accession (or id), label (0/1), optional group (tasks T1-T3) and cluster "
                        "(cluster-grouped baseline CV), e.g. ../shared/data/proteins.tsv")
    p.add_argument("-s", "--spans", default=None, metavar="TSV",
                   help="known NES spans (nes_spans.tsv: accession, start, end, hydrophobic_positions, motif_class)")
    p.add_argument("--enrichment", default=None, metavar="TSV",
                   help="CRM1 binding strength (accession, enrichment_from_input): Spearman of the scores vs it")
    p.add_argument("-f", "--fasta", default=None, metavar="FASTA",
                   help="the proteins' sequences: enables the composition+length baseline (strongly recommended)")
    p.add_argument("-w", "--windows", default=None, metavar="TSV[.gz]",
                   help="all window scores from 'nesscan window-score' (residue/window-level AUC from every window; "
                        "default: from the candidates)")
    p.add_argument("-e", "--embeddings", default=None, metavar="H5",
                   help="embeddings (with --windows): t-SNE of mean-pooled window embeddings")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--name", default=None,
                   help="run name in MultiQC's General Statistics (default: the folder holding --proteins)")
    p.add_argument("--min-overlap", type=_positive_int, default=1,
                   help="residues a candidate must share with a known span to count as a hit (default: 1)")
    p.add_argument("--tsne-max", type=_positive_int, default=3000, help="windows sampled for the t-SNE (default: 3000)")
    p.add_argument("--folds", type=_positive_int, default=5, help="baseline cross-validation folds (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the baseline CV and t-SNE (default: 0)")
    p.add_argument("--max-evalue", type=float, default=None, metavar="E",
                   help="E-value cutoff at which calls are reported (predictions with an evalue column: call rate "
                        "per group, span recall, candidate precision, false calls per protein; default: the "
                        "cutoff of --model's card, the one 'nesscan predict' called high_confidence at)")
    p.add_argument("-m", "--model", default=None, metavar="NAME|DIR",
                   help="the model that made the predictions, for its default E-value cutoff "
                        "(default: the shipped model)")
    _add_common(p)
    return parser


def _setup_logging(args) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run(args) -> int:
    progress = not args.quiet and sys.stderr.isatty() or os.environ.get("NESSCAN_PROGRESS") == "1"
    if args.command == "predict":
        from .memory import bound_heap
        from .predict import run_predict

        bound_heap()

        run_predict(args.input, args.outdir, model=args.model, weights=args.weights, device=args.device,
                    top_k=args.top_k, max_evalue=args.max_evalue, max_length=args.max_length,
                    structure_dir=args.structures, progress=progress, skip_invalid=args.skip_invalid)
    elif args.command == "embed":
        from .embed import run_embed
        from .embedders import get_embedder

        emb = get_embedder(args.embedder, weights=args.weights, layer=args.layer, device=args.device,
                           max_batch_tokens=args.max_batch_tokens, context=args.context)
        run_embed(args.input, args.output, emb, overwrite=args.overwrite, max_length=args.max_length,
                  dtype="float16" if args.half else "float32", progress=progress, skip_invalid=args.skip_invalid)
    elif args.command == "window-score":
        from .predict import resolve_model
        from .window_score import run_window_score

        run_window_score(args.embeddings, resolve_model(args.model), args.output, args.summary,
                         candidates=args.candidates, progress=progress)
    elif args.command == "fuse":
        from .fuse import run_fuse
        from .predict import resolve_model

        run_fuse(args.windows, args.embeddings, resolve_model(args.model), args.outdir, top_k=args.top_k,
                 max_evalue=args.max_evalue, structure_dir=args.structures, progress=progress)
    elif args.command == "gather":
        from .gather import run_gather
        from .registry import card_max_evalue

        max_evalue = args.max_evalue if args.max_evalue is not None else card_max_evalue(args.model)
        run_gather(args.proteins, args.candidates, args.gff3, args.outdir, sample=args.sample, max_evalue=max_evalue)
    elif args.command == "explain":
        from .explain import run_explain

        run_explain(args.input, args.outdir, model=args.model, top_k=args.top_k, plots=args.plots, weights=args.weights,
                    device=args.device, steps=args.steps, progress=progress, skip_invalid=args.skip_invalid)
    elif args.command == "train":
        import torch

        from .embedders import get_embedder
        from .train import TrainConfig, run_train

        if args.threads:
            torch.set_num_threads(args.threads)
        hp = {} if args.dropout is None else {"dropout": args.dropout}
        arch = args.arch or ("stack" if args.embedder == "builtin" else "cnn")
        cfg = TrainConfig(window=args.window, arch=arch, hparams=hp, epochs=args.epochs, lr=args.lr,
                          patience=args.patience, seed=args.seed, folds=max(args.folds, 2),
                          phi_mutants=not args.no_phi_mutants, neg_per_shuffled=args.neg_per_shuffled,
                          tree_iterations=args.tree_iterations, tree_learning_rate=args.tree_learning_rate,
                          tree_max_leaf_nodes=args.tree_leaves, listwise=args.listwise,
                          phi_head=args.phi_head)
        emb = get_embedder(args.embedder, weights=args.weights, layer=args.layer, device=args.device,
                           context=args.context)
        archs = [a.strip() for a in args.compare_archs.split(",")] if args.compare_archs else None
        if archs and (args.folds <= 0 or not set(archs) <= {"transformer", "cnn", "mlp", "gbm", "stack"}):
            raise NesscanError("--compare-archs needs --folds >= 2 and names from transformer, cnn, mlp, gbm, stack")
        run_train(args.data, args.outdir, emb, cfg, cv=args.folds > 0, progress=progress, compare_archs=archs)
    elif args.command == "evaluate":
        from .evaluate import run_evaluate

        run_evaluate(args.proteins, args.labels, args.outdir, candidates=args.candidates, spans=args.spans,
                     enrichment=args.enrichment, fasta=args.fasta, windows=args.windows, embeddings=args.embeddings,
                     name=args.name, min_overlap=args.min_overlap, tsne_max=args.tsne_max, seed=args.seed,
                     folds=args.folds, max_evalue=args.max_evalue, model=args.model)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    try:
        return run(args)
    except NesscanError as e:
        print(f"nesscan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nesscan {args.command}: error: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        # the system refused a read or write (disk full, file size limit, permissions): one
        # line, exit 1; outputs are written under temporary names, so none is left truncated
        log.debug("I/O error", exc_info=True)
        what = e.strerror or str(e)
        where = f": {e.filename}" if e.filename else ""
        print(f"nesscan {args.command}: error: cannot write or read a file ({what}){where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
