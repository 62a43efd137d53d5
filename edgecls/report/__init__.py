"""Every report edgecls writes, rendered one way.

document: a report as sections (paragraphs, tables, figures, lists, code) rendered to HTML, Markdown and JSON and
written atomically; format: how numbers read; plots: the figures. deploy: the deploy report's ordered section list
and its section builders; bench: edgecls-bench's result files and report; robustness: `edgecls eval`'s report."""
