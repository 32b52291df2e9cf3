"""Sampling a served student: `drp generate` (DRP's first stage) and `drp eval` are both one sampling job.

`client` talks to the endpoint, `pool` keeps requests in flight, `samples_file` is the append-only resume point,
`job` is the pipeline the two commands share (resume, send, record, summarise).
"""
