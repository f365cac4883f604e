"""THE COMPARISON, NOT PRODUCT CODE: a webhook function written the obvious way, for `make bench` to measure against.

Never deployed and never imported by the product. See `handle_baseline.py`.
"""
