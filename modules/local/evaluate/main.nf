process EVALUATE {
    tag "$meta.id"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container "ghcr.io/nesscan/nesscan:${workflow.manifest.version}"

    input:
    tuple val(meta), path(proteins), path(candidates), path(fasta), path(labels)
    path(spans)
    path(model)

    output:
    tuple val(meta), path("${task.ext.prefix ?: meta.id}/metrics.json"), emit: metrics
    tuple val(meta), path("${task.ext.prefix ?: meta.id}/*.{png,svg}") , emit: plots, optional: true
    path "*/nesscan_*_mqc.*"                                          , emit: mqc
    path "versions.yml"                                               , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args      = task.ext.args ?: ''
    def prefix    = task.ext.prefix ?: "${meta.id}"
    def spans_arg = spans ? "--spans ${spans}" : ''
    def model_arg = model ? "--model ${model}" : ''
    """
    export TORCH_HOME=\$PWD/.cache/torch HF_HOME=\$PWD/.cache/huggingface XDG_CACHE_HOME=\$PWD/.cache
    export MPLCONFIGDIR=\$PWD/.cache/matplotlib OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}

    nesscan evaluate \\
        --proteins ${proteins} \\
        --candidates ${candidates} \\
        --labels ${labels} \\
        --fasta ${fasta} \\
        --outdir ${prefix} \\
        --name ${meta.id} \\
        --quiet \\
        ${spans_arg} \\
        ${model_arg} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """

    stub:
    def prefix    = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    echo '{}' > ${prefix}/metrics.json
    touch ${prefix}/roc_curves.png
    printf '{"id": "nesscan_evaluate_stats", "plot_type": "generalstats", "data": {}}\\n' > ${prefix}/nesscan_evaluate_stats_mqc.yaml

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """
}
