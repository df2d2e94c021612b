#!/usr/bin/env nextflow
/*
 * nesscan: find and rank nuclear export signals (CRM1/XPO1 NES) in protein sequences.
 *
 *   nextflow run main.nf -profile <docker|singularity|apptainer|podman|local_env>[,gpu] \
 *       --input proteome.fasta --outdir results       (or --input samplesheet.csv: sample,fasta[,labels])
 *
 * Parameters: nextflow_schema.json (or --help). Documentation: docs/nextflow.md.
 */

nextflow.enable.dsl = 2

include { NESSCAN                 } from './workflows/nesscan'
include { PIPELINE_INITIALISATION } from './subworkflows/local/utils_nesscan_pipeline'
include { PIPELINE_COMPLETION     } from './subworkflows/local/utils_nesscan_pipeline'

workflow {

    main:
    // --help, --version, parameter validation; every sample as [ meta, fasta ], its labels
    PIPELINE_INITIALISATION ( "${projectDir}/nextflow_schema.json" )

    NESSCAN ( PIPELINE_INITIALISATION.out.fasta, PIPELINE_INITIALISATION.out.labels )

    PIPELINE_COMPLETION ( params.outdir )
}
