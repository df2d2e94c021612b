process EXPLAIN {
    tag "$meta.id"
    label 'process_low'
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"
    container "ghcr.io/nesscan/nesscan:${workflow.manifest.version}${task.accelerator ? '-gpu' : ''}"

    input:
    tuple val(meta), path(fasta)
    path(model)
    path(weights)

    output:
    tuple val(meta), path("${task.ext.prefix ?: meta.id}/attributions.tsv"), emit: attributions
    tuple val(meta), path("${task.ext.prefix ?: meta.id}/index.html")      , emit: index
    tuple val(meta), path("${task.ext.prefix ?: meta.id}/profiles/*")      , emit: profiles, optional: true
    path "versions.yml"                                                    , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args        = task.ext.args ?: ''
    def prefix      = task.ext.prefix ?: "${meta.id}"
    def model_arg   = model ? "--model ${model}" : ''
    def weights_arg = weights ? "--weights ${weights}" : ''
    """
    export TORCH_HOME=\$PWD/.cache/torch HF_HOME=\$PWD/.cache/huggingface XDG_CACHE_HOME=\$PWD/.cache
    export MPLCONFIGDIR=\$PWD/.cache/matplotlib OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}

    nesscan explain \\
        --input ${fasta} \\
        --outdir ${prefix} \\
        --device ${task.accelerator ? 'cuda' : 'cpu'} \\
        --quiet \\
        ${model_arg} \\
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
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}/profiles
    printf 'id\\tcandidate_rank\\tposition\\tresidue\\tattribution\\tis_phi\\n' > ${prefix}/attributions.tsv
    echo '<!doctype html>' > ${prefix}/index.html

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """
}
