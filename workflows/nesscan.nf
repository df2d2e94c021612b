/*
 * nesscan: scatter every sample's FASTA into chunks (all samples at once); embed, score and fuse
 * every chunk in parallel; gather each sample's chunk tables in input order; evaluate the samples
 * that have labels; one MultiQC report with a row per sample.
 *
 *   input.fasta ─ splitFasta(--chunk_size) ─┬─ EMBED ─ WINDOW_SCORE ─ FUSE ─┐
 *                                           ├─ ...                           ├─ GATHER ─ [EVALUATE] ─ MULTIQC
 *                                           └─ EMBED ─ WINDOW_SCORE ─ FUSE ─┘
 *   with --explain, every chunk also goes to EXPLAIN (integrated-gradients attributions and
 *   profile plots of its best proteins).
 */

include { EMBED        } from '../modules/local/embed/main'
include { WINDOW_SCORE } from '../modules/local/window_score/main'
include { FUSE         } from '../modules/local/fuse/main'
include { GATHER       } from '../modules/local/gather/main'
include { EVALUATE     } from '../modules/local/evaluate/main'
include { EXPLAIN      } from '../modules/local/explain/main'
include { MULTIQC      } from '../modules/local/multiqc/main'

include { softwareVersionsToYAML; paramsSummaryMultiqc; readSchema } from '../subworkflows/local/utils_nesscan_pipeline'

workflow NESSCAN {

    take:
    ch_fasta          // channel: [ val(meta), path(fasta) ], one per sample
    ch_labels         // channel: [ val(meta), path(labels) or [] ], one per sample

    main:
    ch_versions      = Channel.empty()
    ch_multiqc_files = Channel.empty()

    // optional path inputs: a file, or [] (the tool's default)
    weights    = params.esm_weights ? file(params.esm_weights, checkIfExists: true) : []
    model      = params.model       ? file(params.model, checkIfExists: true, type: 'dir') : []
    structures = params.structures  ? file(params.structures, checkIfExists: true, type: 'dir') : []

    //
    // Scatter: chunks of --chunk_size proteins, numbered in input order
    //
    // (a file with no FASTA record at all goes through whole, so that EMBED reports the problem)
    ch_chunks = ch_fasta.flatMap { meta, fasta ->
        (fasta.splitFasta(by: params.chunk_size, file: true) ?: [ fasta ]).withIndex().collect { chunk, i ->
            [ [ id: "${meta.id}.chunk${String.format('%05d', i + 1)}", chunk: i + 1, sample: meta ], chunk ]
        }
    }

    EMBED ( ch_chunks, weights )
    ch_versions = ch_versions.mix(EMBED.out.versions.first())

    //
    // Skip and report (--skip_invalid, on by default): the records each sample's chunks left
    // out, listed in skipped/<sample>.skipped.tsv and counted in MultiQC's General Statistics
    //
    EMBED.out.skipped
        .map { meta, tsv -> [ "${meta.sample.id}.skipped.tsv", tsv.readLines().drop(1).collect { "${meta.id}\t${it}\n" }.join('') ] }
        .collectFile(storeDir: "${params.outdir}/skipped", sort: true, seed: "chunk\tid\tline\treason\n")

    WINDOW_SCORE ( EMBED.out.embeddings, model )
    ch_versions = ch_versions.mix(WINDOW_SCORE.out.versions.first())

    FUSE (
        WINDOW_SCORE.out.windows.join(EMBED.out.embeddings, failOnMismatch: true, failOnDuplicate: true),
        model,
        structures
    )
    ch_versions = ch_versions.mix(FUSE.out.versions.first())

    //
    // Per-residue attributions and profile plots, per chunk
    //
    if( params.explain ) {
        EXPLAIN ( ch_chunks, model, weights )
        ch_versions = ch_versions.mix(EXPLAIN.out.versions.first())
    }

    //
    // Gather: every chunk's tables, sorted by chunk number (deterministic for -resume)
    //
    // per sample: every chunk's tables, sorted by chunk number (deterministic for -resume)
    ch_gather = FUSE.out.proteins
        .join(FUSE.out.candidates, failOnMismatch: true, failOnDuplicate: true)
        .join(FUSE.out.gff3, failOnMismatch: true, failOnDuplicate: true)
        .map { meta, proteins, candidates, gff3 -> [ meta.sample, [ meta.chunk, proteins, candidates, gff3 ] ] }
        .groupTuple()
        .map { sample, chunks ->
            def rows = chunks.sort { it[0] }
            [ sample, rows.collect { it[1] }, rows.collect { it[2] }, rows.collect { it[3] } ]
        }

    GATHER ( ch_gather, model )  // model: its card's E-value cutoff, the one FUSE called at
    ch_versions = ch_versions.mix(GATHER.out.versions)
    ch_multiqc_files = ch_multiqc_files.mix(GATHER.out.proteins.map { meta, tsv -> tsv }).mix(GATHER.out.mqc.flatten())

    //
    // Evaluate the samples with known labels (their own, or --labels)
    //
    EVALUATE (
        GATHER.out.proteins
            .join(GATHER.out.candidates, failOnMismatch: true)
            .join(ch_fasta, failOnMismatch: true)
            .join(ch_labels, failOnMismatch: true)
            .filter { meta, proteins, candidates, fasta, labels -> labels },
        params.nes_spans ? file(params.nes_spans, checkIfExists: true) : [],
        model  // its card's E-value cutoff, the one FUSE called high confidence at
    )
    ch_versions = ch_versions.mix(EVALUATE.out.versions)
    ch_multiqc_files = ch_multiqc_files.mix(EVALUATE.out.mqc.flatten())

    //
    // One General Statistics row per sample: all candidates and skipped input records (the
    // proteins, high-confidence calls and evaluation metrics come from GATHER and EVALUATE)
    //
    // records EMBED skipped (a `skipped` output with one skipped.tsv per chunk, header line first),
    // counted per sample; no such output: none skipped
    ch_skipped = ('skipped' in EMBED.out.getNames() ? EMBED.out.skipped : Channel.empty())
        .map { meta, tsv -> [ meta.sample, countDataRows(tsv) ] }
        .groupTuple()
        .map { sample, counts -> [ sample, counts.sum() ] }

    ch_sample_stats = GATHER.out.candidates
        .join(ch_skipped, remainder: true)
        .map { meta, candidates, skipped -> [ meta.id, countDataRows(candidates), skipped ?: 0 ] }
        .toSortedList { a, b -> a[0] <=> b[0] }
        .map { rows -> sampleStatsMultiqc(rows) }
        .collectFile(name: 'nesscan_samples_mqc.yaml')
    ch_multiqc_files = ch_multiqc_files.mix(ch_sample_stats)

    //
    // Software versions and run summary
    //
    ch_collated_versions = softwareVersionsToYAML(ch_versions)
        .collectFile(storeDir: "${params.outdir}/pipeline_info", name: 'nesscan_software_mqc_versions.yml', sort: true, newLine: false)

    ch_params_summary = Channel
        .value(paramsSummaryMultiqc(readSchema("${projectDir}/nextflow_schema.json")))
        .collectFile(name: 'nesscan_params_mqc.yaml')

    //
    // MultiQC
    //
    ch_multiqc_config        = Channel.fromPath("${projectDir}/assets/multiqc_config.yml", checkIfExists: true)
    ch_multiqc_custom_config = params.multiqc_config ? Channel.fromPath(params.multiqc_config, checkIfExists: true) : Channel.empty()

    ch_multiqc_files = ch_multiqc_files
        .mix(ch_collated_versions)
        .mix(ch_params_summary)

    MULTIQC (
        ch_multiqc_files.toSortedList { a, b -> a.name <=> b.name },
        ch_multiqc_config.toList(),
        ch_multiqc_custom_config.toList()
    )

    emit:
    proteins       = GATHER.out.proteins        // channel: [ val(meta), path(proteins.tsv) ]
    candidates     = GATHER.out.candidates      // channel: [ val(meta), path(candidates.tsv) ]
    gff3           = GATHER.out.gff3            // channel: [ val(meta), path(candidates.gff3) ]
    multiqc_report = MULTIQC.out.report.toList() // channel: [ path(multiqc_report.html) ]
    versions       = ch_versions                // channel: [ path(versions.yml) ]
}

// data rows of a TSV table: its lines but the header
def countDataRows(tsv) {
    def n = 0
    tsv.withReader { r -> r.eachLine { line -> if( line.trim() ) n++ } }
    return Math.max(n - 1, 0)
}

// MultiQC General Statistics columns for every sample: [ [ sample, candidates, skipped ], ... ]
def sampleStatsMultiqc(List rows) {
    def lines = [
        "id: 'nesscan_samples'",
        "plot_type: 'generalstats'",
        "namespace: 'nesscan samples'",
        "headers:",
        "    nesscan_candidates:",
        "        title: 'Candidates'",
        "        description: 'NES candidates reported (every confidence)'",
        "        format: '{:,.0f}'",
        "        scale: 'Purples'",
        "    nesscan_skipped:",
        "        title: 'Skipped'",
        "        description: 'input records skipped as invalid (skipped.tsv)'",
        "        format: '{:,.0f}'",
        "        scale: 'OrRd'",
        "data:",
    ]
    rows.each { sample, candidates, skipped ->
        lines << "    '${sample}':"
        lines << "        nesscan_candidates: ${candidates}"
        lines << "        nesscan_skipped: ${skipped}"
    }
    return lines.join('\n') + '\n'
}
