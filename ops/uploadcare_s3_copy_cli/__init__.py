"""`uploadcare-s3-copy`: the operations command line (backfill, copy, doctor, webhook register, dlq list/redrive).

It drives a deployed stack (or the local stack `make up` keeps running) with the same shared package the functions use:
the Uploadcare client, the copy request format and the copy-and-verify service. The Lambda handlers never import
this package.
"""
