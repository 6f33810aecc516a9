"""`edgefill profile`: run.py (the measuring loop) with its helpers, one job per module.
"""
