process EMBED {
    tag "$meta.id"
    label 'process_medium'
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"
    container "ghcr.io/nesscan/nesscan:${workflow.manifest.version}${task.accelerator ? '-gpu' : ''}"

    input:
    tuple val(meta), path(fasta)
    path(weights)

    output:
    tuple val(meta), path("*.h5")         , emit: embeddings
    tuple val(meta), path("*.skipped.tsv"), emit: skipped, optional: true
    path "versions.yml"                   , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args    = task.ext.args ?: ''
    def prefix  = task.ext.prefix ?: "${meta.id}"
    def weights_arg = weights ? "--weights ${weights}" : ''
    """
    # caches in the task directory: \$HOME is read-only in Singularity/Galaxy containers
    export TORCH_HOME=\$PWD/.cache/torch HF_HOME=\$PWD/.cache/huggingface XDG_CACHE_HOME=\$PWD/.cache
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}

    nesscan embed \\
        --input ${fasta} \\
        --output ${prefix}.h5 \\
        --device ${task.accelerator ? 'cuda' : 'cpu'} \\
        --quiet \\
        ${weights_arg} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """

    stub:
    def prefix  = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.h5

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """
}
