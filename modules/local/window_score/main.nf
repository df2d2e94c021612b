process WINDOW_SCORE {
    tag "$meta.id"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container "ghcr.io/nesscan/nesscan:${workflow.manifest.version}"

    input:
    tuple val(meta), path(embeddings)
    path(model)

    output:
    tuple val(meta), path("*.windows.tsv.gz"), emit: windows
    tuple val(meta), path("*.summary.tsv")   , emit: summary
    path "versions.yml"                      , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args      = task.ext.args ?: ''
    def prefix    = task.ext.prefix ?: "${meta.id}"
    def model_arg = model ? "--model ${model}" : ''
    """
    export TORCH_HOME=\$PWD/.cache/torch HF_HOME=\$PWD/.cache/huggingface XDG_CACHE_HOME=\$PWD/.cache
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}

    nesscan window-score \\
        --embeddings ${embeddings} \\
        --output ${prefix}.windows.tsv.gz \\
        --summary ${prefix}.summary.tsv \\
        --quiet \\
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
    printf 'id\\tstart\\tend\\tscore\\n' | gzip > ${prefix}.windows.tsv.gz
    printf 'id\\tlength\\tmax_score\\tbest_start\\tbest_end\\tbest_sequence\\n' > ${prefix}.summary.tsv

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """
}
