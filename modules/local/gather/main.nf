// Concatenates the per-chunk result tables in chunk order with `nesscan gather` (header and
// protein-ID checks, one GFF3 header) and writes the run's MultiQC custom content (calls beside
// what chance gives at the E-value cutoff of `model`'s card, or --max_evalue).
process GATHER {
    tag "$meta.id"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container "ghcr.io/nesscan/nesscan:${workflow.manifest.version}"

    input:
    tuple val(meta), path(proteins, stageAs: 'proteins/?????/*'), path(candidates, stageAs: 'candidates/?????/*'), path(gff3, stageAs: 'gff3/?????/*')
    path(model)

    output:
    tuple val(meta), path("${task.ext.prefix ?: ''}proteins.tsv")   , emit: proteins
    tuple val(meta), path("${task.ext.prefix ?: ''}candidates.tsv") , emit: candidates
    tuple val(meta), path("${task.ext.prefix ?: ''}candidates.gff3"), emit: gff3
    path "*_mqc.yaml"                                              , emit: mqc
    path "versions.yml"                                            , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args   = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: ''
    def model_arg = model ? "--model ${model}" : ''
    """
    gather \\
        --proteins ${proteins} \\
        --candidates ${candidates} \\
        --gff3 ${gff3} \\
        --sample ${meta.id} \\
        --outdir gathered \\
        ${model_arg} \\
        ${args}
    mv gathered/proteins.tsv ${prefix}proteins.tsv
    mv gathered/candidates.tsv ${prefix}candidates.tsv
    mv gathered/candidates.gff3 ${prefix}candidates.gff3
    mv gathered/*_mqc.yaml .

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version | sed 's/nesscan //')
    END_VERSIONS
    """

    stub:
    def prefix = task.ext.prefix ?: ''
    """
    touch ${prefix}proteins.tsv ${prefix}candidates.tsv ${prefix}candidates.gff3 nesscan_predict_stats_mqc.yaml

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version | sed 's/nesscan //')
    END_VERSIONS
    """
}
