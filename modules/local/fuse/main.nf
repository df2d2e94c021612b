process FUSE {
    tag "$meta.id"
    label 'process_low'

    conda "${moduleDir}/environment.yml"
    container "ghcr.io/nesscan/nesscan:${workflow.manifest.version}"

    input:
    tuple val(meta), path(windows), path(embeddings)
    path(model)
    path(structures)

    output:
    tuple val(meta), path("*/proteins.tsv")   , emit: proteins
    tuple val(meta), path("*/candidates.tsv") , emit: candidates
    tuple val(meta), path("*/candidates.gff3"), emit: gff3
    path "versions.yml"                       , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args           = task.ext.args ?: ''
    def prefix         = task.ext.prefix ?: "${meta.id}"
    def model_arg      = model ? "--model ${model}" : ''
    def structures_arg = structures ? "--structures ${structures}" : ''
    """
    export TORCH_HOME=\$PWD/.cache/torch HF_HOME=\$PWD/.cache/huggingface XDG_CACHE_HOME=\$PWD/.cache
    export OMP_NUM_THREADS=${task.cpus} MKL_NUM_THREADS=${task.cpus}

    nesscan fuse \\
        --windows ${windows} \\
        --embeddings ${embeddings} \\
        --outdir ${prefix} \\
        --quiet \\
        ${model_arg} \\
        ${structures_arg} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """

    stub:
    def prefix         = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    printf 'id\\tlength\\tscore\\tnes_score\\tbest_start\\tbest_end\\tbest_sequence\\n' > ${prefix}/proteins.tsv
    printf 'id\\trank\\tstart\\tend\\tsequence\\tscore\\thigh_confidence\\n' > ${prefix}/candidates.tsv
    printf '##gff-version 3\\n' > ${prefix}/candidates.gff3

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        nesscan: \$(nesscan --version 2>&1 | sed 's/^nesscan //')
    END_VERSIONS
    # torch's version.py read without importing torch (seconds per task)
    python3 -c 'import importlib.util as u, os, platform, runpy; t = runpy.run_path(os.path.join(os.path.dirname(u.find_spec("torch").origin), "version.py")); print("    python:", platform.python_version()); print("    torch:", t["__version__"]); print("    torch_cuda:", t["cuda"] or "none")' >> versions.yml
    """
}
