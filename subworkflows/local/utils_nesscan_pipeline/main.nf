/*
 * Start and end of a run: --help/--version, parameter validation against nextflow_schema.json
 * (without the nf-schema plugin, which cannot be downloaded offline), the input channel, the
 * software-versions and run-summary files for MultiQC, and the completion message.
 */

import groovy.json.JsonSlurper
import org.yaml.snakeyaml.Yaml

/*
 * PIPELINE_INITIALISATION: emits every sample's FASTA as [ meta, fasta ] and its labels as
 * [ meta, labels or [] ] (--input: a samplesheet .csv, or one FASTA file).
 */
workflow PIPELINE_INITIALISATION {

    take:
    schema_file      // String: path of nextflow_schema.json

    main:
    def schema = readSchema(schema_file)

    if( params.version ) {
        log.info "${workflow.manifest.name} ${getWorkflowVersion()}"
        System.exit(0)
    }
    if( params.help ) {
        log.info paramsHelp(schema)
        System.exit(0)
    }
    if( params.validate_params ) {
        def errors = validateParameters(params, schema) + checkParameterCombinations(params)
        if( errors ) {
            error("Invalid parameters:\n" + errors.collect { "  * ${it}" }.join('\n') +
                  "\nRun with --help for every parameter (see also nextflow_schema.json).")
        }
    }

    // the tools the local_env profile expects on PATH (no container, no conda)
    if( workflow.profile.tokenize(',').contains('local_env') ) {
        def missing = missingTools(['nesscan', 'multiqc', 'python3'])
        if( missing )
            error("-profile local_env: ${missing.join(', ')} not found on PATH (install the pipeline's tools with `pip install 'nesscan[pipeline]'` in the active environment, or use a container profile)")
    }

    // --input: a samplesheet (.csv: sample,fasta[,labels]) or one FASTA file
    def samples = isSamplesheet(params.input.toString())
        ? readSamplesheet(params.input.toString(), readSchema("${projectDir}/assets/schema_input.json"))
        : [ singleFasta(params.input.toString()) ]

    ch_fasta  = Channel.fromList(samples.collect { s -> [ s[0], s[1] ] })
    ch_labels = Channel.fromList(samples.collect { s -> [ s[0], s[2] ] })

    emit:
    fasta  = ch_fasta     // channel: [ val(meta), path(fasta) ], one per sample
    labels = ch_labels    // channel: [ val(meta), path(labels) or [] ], one per sample
}

// ------------------------------------------------------------------------------------------------
// Input: one FASTA, or a samplesheet checked against assets/schema_input.json
// ------------------------------------------------------------------------------------------------

def isSamplesheet(String input) {
    return input.toLowerCase().endsWith('.csv')
}

// executables among `tools` that are not on the pipeline's PATH
def missingTools(List<String> tools) {
    def dirs = (System.getenv('PATH') ?: '').tokenize(File.pathSeparator)
    return tools.findAll { t -> !dirs.any { d -> def f = new File(d, t); f.isFile() && f.canExecute() } }
}

// [ meta, fasta, labels ] for a plain FASTA --input: results directly under --outdir
def singleFasta(String input) {
    def fasta = file(input, checkIfExists: true)
    def labels = params.labels ? file(params.labels, checkIfExists: true) : []
    return [ [ id: fasta.simpleName, single: true ], fasta, labels ]
}

/*
 * The samplesheet as [ meta, fasta, labels ] rows; meta = [ id: sample, single: false ] (results
 * under <outdir>/<sample>/). CSV with a header line naming the columns sample,fasta[,labels];
 * relative paths are relative to the samplesheet's folder; a row without labels uses --labels.
 * Every problem is reported on one line: "Samplesheet <path>: row 3: ...; row 4: ...".
 */
def readSamplesheet(String path, Map schema) {
    def sheet = file(path)
    def fail = { String msg -> error("Samplesheet ${path}: ${msg}") }
    if( !sheet.exists() )
        fail('file not found')
    def item     = schema.items as Map
    def props    = item.properties as Map
    def required = (item.required ?: []) as List
    def lines    = sheet.readLines().withIndex().findAll { l, i -> l.trim() && !l.trim().startsWith('#') }
    if( !lines )
        fail("empty (expected a header line: ${props.keySet().join(',')})")
    def header = splitCsvLine(lines[0][0])
    def unknown = header.findAll { !props.containsKey(it) }
    if( unknown )
        fail("unknown column(s) ${unknown.join(', ')} in the header (expected ${required.join(',')}[,${(props.keySet() - required).join(',')}])")
    def absent = required.findAll { !header.contains(it) }
    if( absent )
        fail("missing column(s) ${absent.join(', ')} in the header (expected ${required.join(',')}[,${(props.keySet() - required).join(',')}])")
    if( header.size() != header.unique(false).size() )
        fail("duplicate column in the header: ${header.join(',')}")
    if( lines.size() < 2 )
        fail('no sample rows after the header')

    def errors = []
    def rows   = []
    def seen   = [:]
    lines.drop(1).each { String line, int i ->
        def row = "line ${i + 1}"
        def fields = splitCsvLine(line)
        if( fields.size() != header.size() ) {
            errors << "${row}: ${fields.size()} field(s), the header has ${header.size()}"
            return
        }
        def values = [header, fields].transpose().collectEntries { k, v -> [ (k): v ] }
        def rowErrors = []
        required.each { k -> if( !values[k] ) rowErrors << "${row}: ${k} is empty" }
        values.each { String k, String v ->
            if( !v )
                return
            def value = (props[k].format == 'file-path') ? resolveSheetPath(v, sheet) : v
            def msg = checkValue(k, value, props[k] as Map)
            if( msg )
                rowErrors << "${row}: ${k} ${msg}"
        }
        if( values.sample && seen.containsKey(values.sample) )
            rowErrors << "${row}: duplicate sample '${values.sample}' (also ${seen[values.sample]})"
        if( values.sample && !seen.containsKey(values.sample) )
            seen[values.sample] = row
        if( rowErrors ) {
            errors.addAll(rowErrors)
            return
        }
        def labels = values.labels ? file(resolveSheetPath(values.labels, sheet)) :
                     params.labels ? file(params.labels, checkIfExists: true) : []
        rows << [ [ id: values.sample, single: false ], file(resolveSheetPath(values.fasta, sheet)), labels ]
    }
    if( errors )
        fail(errors.join('; '))
    return rows
}

// a samplesheet path: absolute and URLs as they are, relative ones from the samplesheet's folder
def resolveSheetPath(String value, sheet) {
    if( value.startsWith('/') || value =~ /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\// )
        return value
    return sheet.toAbsolutePath().parent.resolve(value).normalize().toString()
}

// one CSV line: fields split on commas, surrounding spaces and double quotes removed
def splitCsvLine(String line) {
    return line.split(',', -1).collect { it.trim().replaceAll(/^"(.*)"$/, '$1').trim() }
}

/*
 * PIPELINE_COMPLETION: one line on where the results are, or what failed.
 */
workflow PIPELINE_COMPLETION {

    take:
    outdir           // String

    main:
    // (the handlers call script-level functions: inside the closures `workflow` is not bound)
    workflow.onComplete { completionMessage(outdir) }
    workflow.onError    { errorMessage() }
}

def completionMessage(outdir) {
    if( workflow.success )
        log.info "-[${workflow.manifest.name}] Pipeline completed successfully; results in ${outdir}"
    else
        log.error "-[${workflow.manifest.name}] Pipeline completed with errors (the failed task's error is above; ${outdir}/pipeline_info has the execution report)"
}

def errorMessage() {
    log.error "-[${workflow.manifest.name}] ${workflow.errorMessage ?: 'failed'}"
}

// ------------------------------------------------------------------------------------------------
// Parameter schema
// ------------------------------------------------------------------------------------------------

def readSchema(String path) {
    def f = new File(path)
    if( !f.exists() )
        error("Parameter schema not found: ${path}")
    return new JsonSlurper().parse(f) as Map
}

// every parameter of the schema, name -> its JSON-schema definition (groups flattened)
def schemaProperties(Map schema) {
    def props = [:] as LinkedHashMap
    def groups = (schema['$defs'] ?: schema['definitions'] ?: [:]) as Map
    groups.each { name, group -> props.putAll((group['properties'] ?: [:]) as Map) }
    props.putAll((schema['properties'] ?: [:]) as Map)
    return props
}

def schemaRequired(Map schema) {
    def req = [] as List
    def groups = (schema['$defs'] ?: schema['definitions'] ?: [:]) as Map
    groups.each { name, group -> req.addAll((group['required'] ?: []) as List) }
    req.addAll((schema['required'] ?: []) as List)
    return req.unique()
}

/*
 * Checks params against the schema; returns a list of messages (empty when all is well):
 * unknown parameters (with a suggestion), missing required ones, wrong types, enum, pattern,
 * minimum/maximum, and file/directory existence for `exists: true`.
 */
def validateParameters(Map params_in, Map schema) {
    def props    = schemaProperties(schema)
    def required = schemaRequired(schema)
    def errors   = []

    params_in.each { String name, value ->
        if( !props.containsKey(name) ) {
            def hint = closestName(name, props.keySet() as List)
            errors << "--${name}: unknown parameter" + (hint ? " (did you mean --${hint}?)" : '')
        }
    }
    required.each { String name ->
        def v = params_in[name]
        if( v == null || (v instanceof CharSequence && v.toString().trim().isEmpty()) || v == true && props[name]?.type == 'string' )
            errors << "--${name}: missing required parameter (${props[name]?.description ?: ''})".replace(' ()', '')
    }
    props.each { String name, Map spec ->
        if( !params_in.containsKey(name) )
            return
        def value = params_in[name]
        if( value == null )
            return
        def msg = checkValue(name, value, spec)
        if( msg )
            errors << "--${name}: ${msg}"
    }
    return errors
}

def checkValue(String name, value, Map spec) {
    def types = spec.type instanceof List ? spec.type as List : [spec.type]
    def custom = spec.errorMessage ? " (${spec.errorMessage})" : ''
    def shown = value instanceof CharSequence ? "'${value}'" : "${value}"
    if( !types.any { t -> isOfType(value, t as String) } )
        return "expected ${types.join(' or ')}, got ${shown}${custom}"
    if( spec.enum != null && !((spec.enum as List).collect { it.toString() }.contains(value.toString())) )
        return "${shown} is not one of ${(spec.enum as List).join(', ')}${custom}"
    if( value instanceof Number && !(value instanceof Boolean) ) {
        if( spec.minimum != null && value < (spec.minimum as Number) )
            return "${value} is below the minimum ${spec.minimum}${custom}"
        if( spec.maximum != null && value > (spec.maximum as Number) )
            return "${value} is above the maximum ${spec.maximum}${custom}"
    }
    if( value instanceof CharSequence ) {
        def s = value.toString()
        if( spec.pattern && !(s ==~ (spec.pattern as String)) )
            return "${shown} does not match ${spec.pattern}${custom}"
        if( spec.exists && spec.format in ['file-path', 'directory-path', 'path'] ) {
            def f = file(s)
            if( !f.exists() )
                return "${shown} does not exist${custom}"
            if( spec.format == 'file-path' && f.isDirectory() )
                return "${shown} is a directory, a file was expected${custom}"
            if( spec.format == 'directory-path' && !f.isDirectory() )
                return "${shown} is not a directory${custom}"
        }
    }
    return null
}

def isOfType(value, String type) {
    switch( type ) {
        case 'string':  return value instanceof CharSequence || (value instanceof Number && !(value instanceof Boolean))
        case 'integer': return value instanceof Integer || value instanceof Long || value instanceof BigInteger
        case 'number':  return value instanceof Number
        case 'boolean': return value instanceof Boolean
        case 'null':    return value == null
        default:        return true
    }
}

// the schema parameter closest to a misspelt one (edit distance <= 3, or kebab/camel-case of it)
def closestName(String name, List<String> candidates) {
    def snake = name.replace('-', '_').replaceAll(/([a-z0-9])([A-Z])/, '$1_$2').toLowerCase()
    if( snake in candidates )
        return snake
    def best = null
    def bestD = 4
    candidates.each { c ->
        def d = editDistance(snake, c)
        if( d < bestD ) { bestD = d; best = c }
    }
    return best
}

def editDistance(String a, String b) {
    def prev = (0..b.size()).collect { it }
    for( int i = 1; i <= a.size(); i++ ) {
        def cur = [i] + [0] * b.size()
        for( int j = 1; j <= b.size(); j++ ) {
            def cost = a[i - 1] == b[j - 1] ? 0 : 1
            cur[j] = [prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost].min()
        }
        prev = cur
    }
    return prev[b.size()]
}

// rules the schema cannot express
def checkParameterCombinations(Map p) {
    def errors = []
    if( p.embedder && p.embedder != 'builtin' && !p.esm_weights )
        errors << "--embedder ${p.embedder} needs --esm_weights <checkpoint.pt> (weights are never downloaded inside a task; see docs/nextflow.md)"
    if( p.embedder == 'builtin' && p.esm_weights )
        errors << "--esm_weights is only used with an ESM-2 --embedder"
    if( p.nes_spans && !p.labels && !(p.input && isSamplesheet(p.input.toString())) )
        errors << "--nes_spans is only used by the evaluation: give --labels too (or a labels column in a samplesheet)"
    return errors
}

def paramsHelp(Map schema) {
    def lines = [
        "${workflow.manifest.name} ${getWorkflowVersion()}: ${workflow.manifest.description}",
        "",
        "Typical command:",
        "  nextflow run main.nf -profile <docker|singularity|apptainer|podman|local_env>[,gpu] --input proteome.fasta --outdir results",
        ""
    ]
    def groups = (schema['$defs'] ?: schema['definitions'] ?: [:]) as Map
    def showHidden = params.help == 'all'
    groups.each { gname, group ->
        def props = ((group['properties'] ?: [:]) as Map).findAll { n, spec -> showHidden || !spec.hidden }
        if( !props )
            return
        lines << "${group.title ?: gname}:"
        props.each { String n, Map spec ->
            def type = spec.type instanceof List ? (spec.type as List).join('|') : spec.type
            def req  = n in ((group['required'] ?: []) as List) ? ' (required)' : ''
            def dflt = spec.containsKey('default') ? " [default: ${spec.default}]" : ''
            lines << "  --${n.padRight(26)} [${type}]${req} ${spec.description ?: ''}${dflt}"
        }
        lines << ''
    }
    lines << (showHidden ? '' : 'Hidden parameters: --help all')
    return lines.join('\n')
}

def getWorkflowVersion() {
    def v = workflow.manifest.version
    return v ? (v.toString().startsWith('v') ? v : "v${v}") : ''
}

// ------------------------------------------------------------------------------------------------
// MultiQC inputs
// ------------------------------------------------------------------------------------------------

/*
 * One MultiQC "software versions" file (name must end in _mqc_versions.yml) from every task's
 * versions.yml: { process (short name) : { tool : version } }, plus the workflow itself.
 * Returns a channel with the YAML text.
 */
def softwareVersionsToYAML(ch_versions) {
    return ch_versions
        .unique()
        .map { f -> new Yaml().load(f.text) as Map }
        .collect()
        .map { List maps ->
            def merged = new TreeMap()
            maps.each { Map m ->
                m.each { proc, tools ->
                    def name = proc.toString().tokenize(':')[-1]
                    def entry = merged.get(name, new TreeMap())
                    (tools as Map).each { k, v -> entry[k.toString()] = v == null ? 'none' : v.toString() }
                }
            }
            merged['Workflow'] = new TreeMap([ (workflow.manifest.name): getWorkflowVersion(), Nextflow: workflow.nextflow.version.toString() ])
            def out = new StringBuilder()
            merged.each { proc, tools ->
                out << "${proc}:\n"
                tools.each { k, v -> out << "    ${k}: \"${v.toString().replace('"', '\\"')}\"\n" }
            }
            out.toString()
        }
}

/*
 * The run's parameters as a MultiQC custom-content section (HTML). Only what the user can set:
 * nothing time- or run-dependent, so that -resume finds MultiQC's inputs unchanged.
 */
def paramsSummaryMultiqc(Map schema) {
    def props = schemaProperties(schema)
    def rows = props.keySet()
        .findAll { n -> !(props[n].hidden) && params[n] != null && params[n] != false }
        .collect { n -> "        <dt>--${n}</dt><dd><samp>${escapeHtml(params[n].toString())}</samp></dd>" }
    def lines = [
        "id: 'nesscan-nesscan-summary'",
        "description: ' - the parameters of this run.'",
        "section_name: 'nesscan parameters'",
        "section_href: 'https://github.com/nesscan/nesscan'",
        "plot_type: 'html'",
        "data: |",
        "    <dl class=\"dl-horizontal\">",
    ] + rows + [ "    </dl>" ]
    return lines.join('\n') + '\n'
}

def escapeHtml(String s) {
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace("'", '&#39;')
}
